"""Adapters: real public exports mapped to the data contract.

Each adapter is a function ``path -> Tables`` registered in :data:`ADAPTERS`, so a source
``NAME:PATH`` (``maven-crm:../shared/data/maven_crm``) loads through
:func:`spm_ml.data.io.load_tables`.  What the contract cannot hold stays as extra columns;
values an adapter had to fill in are flagged by ``*_imputed`` columns.  Rules:
``docs/adapters.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spm_ml.data.adapters import ibm_hr, maven_crm
from spm_ml.data.adapters._frames import empty_table
from spm_ml.data.adapters.ibm_hr import load_ibm_hr, read_ibm_hr_frame
from spm_ml.data.adapters.maven_crm import load_maven_crm
from spm_ml.data.tables import Tables

ADAPTERS: dict[str, Callable[[str | Path], Tables]] = {
    "maven-crm": load_maven_crm,
    "ibm-hr": load_ibm_hr,
}
"""Adapter name (the ``NAME:`` prefix of a source) -> loader."""

NON_FEATURE_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "maven-crm": maven_crm.NON_FEATURE_COLUMNS,
    "ibm-hr": ibm_hr.NON_FEATURE_COLUMNS,
}
"""Per adapter and table, extra columns that are identifiers, targets or outcome-derived flags.

Each loader sets its own list on ``Tables.non_feature_columns``; the deal features refuse a
custom field listed there, as it would leak the label.
"""

NON_EMPTY_TABLES: dict[str, tuple[str, ...]] = {"ibm-hr": ("reps",)}
"""Adapters whose export holds only some tables: the ones that must have rows.

Others default to :data:`spm_ml.data.validate.NON_EMPTY_TABLES`.
"""

__all__ = [
    "NON_EMPTY_TABLES",
    "ADAPTERS",
    "NON_FEATURE_COLUMNS",
    "empty_table",
    "load_ibm_hr",
    "load_maven_crm",
    "read_ibm_hr_frame",
]
