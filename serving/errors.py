"""From spm-ml's errors to HTTP answers.

The service never answers 5xx for a client's mistake: an :class:`~spm_ml.errors.SpmMlError`
raised while scoring an item becomes that item's 404 (something named does not exist) or
422 (well-formed but not scorable as asked), with the error's message, which names the
field and never quotes customer text.  The one 5xx the service gives on purpose is 503: a
model family without a champion cannot answer, whatever the request.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from spm_ml.errors import ModelNotFoundError, SpmMlError
from spm_ml.scoring import RequestError, UnknownDealError


def item_error(error: SpmMlError) -> tuple[int, str]:
    """The status and message of an item refused while scoring.

    A deal id the source lacks is 404; a request that is well-formed but cannot be scored
    as asked (a posted deal without its initial history, as_of after the close, emails
    without tone when the model reads it) is 422, with the field named first.
    """
    if isinstance(error, (ModelNotFoundError, UnknownDealError)):
        return 404, _located(error)
    if isinstance(error, RequestError):
        return 422, _located(error)
    return 400, str(error)


def unavailable(ctx, why: str) -> Response:
    """503 with what to run: the endpoint's model family has no champion loaded."""
    ctx.response.status_code = 503
    return Response(
        json.dumps({"error": why}).encode(), status_code=503, media_type="application/json"
    )


def _located(error: SpmMlError) -> str:
    field = getattr(error, "field", None)
    return f"{field}: {error}" if field else str(error)
