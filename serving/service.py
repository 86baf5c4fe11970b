"""The spm-ml HTTP service: one BentoML service, models loaded once from the MLflow registry.

Start it with ``spm-ml serve [--workdir DIR] [--port P]``.  At start-up it points MLflow at
the work folder's store, loads ``deal-win@champion`` and the organisation's tables (context
for features such as a rep's track record).  If either is missing it fails to start with a
message saying what to run, rather than answering requests it cannot serve.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import bentoml
import pandas as pd

from serving.errors import http_error, refuse_until_supported
from serving.middleware import RequestGuard
from serving.openapi import DocumentedService
from serving.schemas import DealScore, DealScoreRequest, Driver, ModelRef
from spm_ml import registry, settings
from spm_ml.errors import SpmMlError

logger = logging.getLogger(__name__)

DEAL_MODEL = "deal-win"

EXAMPLE_REQUEST = {
    "deal": {
        "deal_id": "NEW-1",
        "rep_id": "R00017",
        "account_id": "A01402",
        "product": "Pulse Pro",
        "amount": 24000,
        "created_at": "2025-10-01T00:00:00",
        "expected_close_at": "2026-01-15T00:00:00",
        "stage": "proposal",
    },
    "as_of": "2025-12-01T00:00:00",
    "activities": [
        {"type": "meeting", "occurred_at": "2025-11-20T15:00:00", "duration_min": 45},
        {"type": "demo", "occurred_at": "2025-11-25T10:00:00", "duration_min": 60},
    ],
    "emails": [{"direction": "inbound", "sent_at": "2025-11-28T09:12:00"}],
    "top_k": 3,
}
"""A request the tests and the README share."""


@bentoml.service(name="spm-ml", traffic={"timeout": 60}, service_class=DocumentedService)
class SpmMlService:
    """Explained deal scores over HTTP (more endpoints join as the model families land)."""

    def __init__(self) -> None:
        from spm_ml.data.io import load_tables
        from spm_ml.models.deal_win import feature_config_of
        from spm_ml.nlp.signals import with_email_scores
        from spm_ml.scoring import DealScorer

        work = settings.workdir()
        registry.use_local_store(work)
        loaded = registry.load_model(DEAL_MODEL, alias=registry.CHAMPION)
        self.model_ref = ModelRef(name=DEAL_MODEL, version=loaded.version, alias=registry.CHAMPION)
        # Context for features (reps, accounts, track records); emails are scored once here,
        # so the deals it knows get the same email-tone features as in training.
        context = with_email_scores(
            load_tables(settings.data_source(work)), cache=settings.email_scores_path(work)
        )
        self.scorer = DealScorer(loaded.model, context, feature_config_of(loaded.record))
        logger.info("loaded %s version %s", DEAL_MODEL, self.model_ref.version)

    @bentoml.api(route="/v1/deals/score")
    def score_deal(self, request: DealScoreRequest, /) -> DealScore:
        """Win probability of one open deal and the top SHAP drivers behind it."""
        refuse_until_supported(request, self.scorer.context.deals["deal_id"])  # interim
        as_of = _utc_naive(request.as_of or datetime.now(UTC))
        try:
            scored = self.scorer.score_posted_deal(
                request.deal.model_dump(),
                as_of,
                history=[h.model_dump() for h in request.history],
                activities=[a.model_dump() for a in request.activities],
                emails=[e.as_row() for e in request.emails],
                top_k=request.top_k,
            )
        except SpmMlError as err:
            raise http_error(err) from err
        return DealScore(
            deal_id=scored["deal_id"],
            as_of=as_of.to_pydatetime(),
            probability=scored["probability"],
            drivers=[Driver(**d) for d in scored["drivers"]],
            model=self.model_ref,
        )


# Token, JSON-only, body-size limit and log redaction for every request (serving/middleware.py).
SpmMlService.add_asgi_middleware(RequestGuard)


def _utc_naive(moment: datetime) -> pd.Timestamp:
    """Times inside spm-ml are naive UTC; clients may send any offset."""
    stamp = pd.Timestamp(moment)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)
