"""From spm-ml's errors to HTTP answers.

The service never answers 5xx for a client's mistake: an :class:`~spm_ml.errors.SpmMlError`
raised while scoring becomes 404 (something named does not exist) or 400 (anything else),
with the error's message, which names the field and never quotes customer text.
"""

from __future__ import annotations

from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound, UnprocessableEntity

from spm_ml.errors import ModelNotFoundError, SpmMlError
from spm_ml.scoring import RequestError, UnknownDealError


def http_error(error: SpmMlError) -> BentoMLException:
    """The BentoML exception (hence HTTP status) for an error raised while scoring.

    A request that names a deal the source lacks is 404; one that is well-formed but cannot
    be scored as asked (a posted deal without its initial history, as_of after the close,
    emails without tone when the model reads it) is 422, with the field named.
    """
    if isinstance(error, (ModelNotFoundError, UnknownDealError)):
        return NotFound(_located(error))
    if isinstance(error, RequestError):
        return UnprocessableEntity(_located(error))
    return InvalidArgument(str(error))


def _located(error: SpmMlError) -> str:
    field = getattr(error, "field", None)
    return f"{field}: {error}" if field else str(error)
