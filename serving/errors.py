"""From spm-ml's errors to HTTP answers, and the requests this version cannot serve yet.

The service never answers 5xx for a client's mistake: an :class:`~spm_ml.errors.SpmMlError`
raised while scoring becomes 404 (something named does not exist) or 400 (anything else),
with the error's message, which names the field and never quotes customer text.
"""

from __future__ import annotations

from collections.abc import Iterable

from bentoml.exceptions import BentoMLException, InvalidArgument, NotFound

from serving.schemas import DealScoreRequest
from spm_ml.errors import ModelNotFoundError, SpmMlError


def http_error(error: SpmMlError) -> BentoMLException:
    """The BentoML exception (hence HTTP status) for an error raised while scoring."""
    if isinstance(error, ModelNotFoundError):
        return NotFound(str(error))
    return InvalidArgument(str(error))


def refuse_until_supported(request: DealScoreRequest, known_deal_ids: Iterable[str]) -> None:
    """Raise a 4xx for the request shapes the scoring path does not handle yet.

    Scoring a known deal by ``deal_id`` and scoring email text arrive with the new scoring
    path (issue 14, point 4); until then they are refused plainly rather than guessed at.
    Remove the call from the endpoint once both are supported.
    """
    if request.deal_id is not None:
        if request.deal_id not in set(known_deal_ids):
            raise NotFound(
                "deal_id: no deal with this id in the service's data source; "
                "post the deal with its history instead"
            )
        raise InvalidArgument(
            "deal_id: scoring a known deal by id is not available in this version yet; "
            "post the deal with its history instead"
        )
    for i, email in enumerate(request.emails):
        if email.has_text:
            raise InvalidArgument(
                f"emails.{i}: scoring email text is not available in this version yet; "
                "send its p_negative, p_neutral, p_positive (spm-ml sentiment score) or "
                "only its direction and sent_at"
            )
