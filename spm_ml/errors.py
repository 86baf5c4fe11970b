"""The small exception hierarchy of spm-ml.

Messages are for the person who has to fix the input: they name the table, row and column,
what was expected, and the likely fix.  The CLI maps them to exit status 2, the service to
HTTP 400/404/422.
"""

from __future__ import annotations


class SpmMlError(Exception):
    """Base class of every error spm-ml raises on purpose."""


class SourceError(SpmMlError, OSError):
    """A data source cannot be read: missing folder, wrong format, bad encoding, no database."""


class SchemaError(SpmMlError, ValueError):
    """Input data breaks the data contract; ``problems`` lists every violation found."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class LeakageError(SpmMlError, ValueError):
    """A feature or a split would let information from after ``as_of`` into training."""


class TrainingError(SpmMlError, ValueError):
    """Training cannot proceed on the given data (one class only, too few rows, ...)."""


class ModelNotFoundError(SpmMlError, LookupError):
    """No registered model (or alias) matches the request."""
