"""The spm-ml HTTP service: one BentoML service, models loaded once from the MLflow registry.

Start it with ``spm-ml serve [--workdir DIR] [--port P]``.  At start-up it points MLflow at
the work folder's store, loads ``deal-win@champion`` and the organisation's tables (context
for features such as a rep's track record).  If either is missing it fails to start with a
message saying what to run, rather than answering requests it cannot serve.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import bentoml
import pandas as pd

from serving.batching import MicroBatcher
from serving.errors import http_error
from serving.middleware import RequestGuard
from serving.openapi import DocumentedService
from serving.schemas import DealScore, DealScoreRequest, Driver, ModelRef
from spm_ml import registry, settings
from spm_ml.scoring import DealRequest, DealResult

logger = logging.getLogger(__name__)

DEAL_MODEL = "deal-win"
UNTRACED_ROUTES = ("/v1/",)
"""Routes BentoML's OpenTelemetry middleware skips unless ``SPM_ML_TRACING=1``: with no
trace exporter configured its spans go nowhere, and skipping them raised the throughput
of one worker from 609 to 886 explained scores/s (docs/benchmarks.md)."""

EXAMPLE_REQUEST = {
    "deal": {
        "deal_id": "NEW-1",
        "rep_id": "R00015",
        "account_id": "A00501",
        "product": "Pulse Pro",
        "amount": 24000,
        "created_at": "2025-10-01T00:00:00",
        "expected_close_at": "2026-01-15T00:00:00",
        "stage": "proposal",
    },
    "as_of": "2025-12-01T00:00:00",
    "history": [
        {"changed_at": "2025-10-01T00:00:00", "field": "stage", "new_value": "prospecting"},
        {"changed_at": "2025-10-01T00:00:00", "field": "amount", "new_value": "24000"},
        {
            "changed_at": "2025-10-01T00:00:00",
            "field": "expected_close_at",
            "new_value": "2026-01-15",
        },
        {
            "changed_at": "2025-10-14T09:30:00",
            "field": "stage",
            "old_value": "prospecting",
            "new_value": "qualification",
        },
        {
            "changed_at": "2025-10-30T16:00:00",
            "field": "stage",
            "old_value": "qualification",
            "new_value": "discovery",
        },
        {
            "changed_at": "2025-11-21T11:00:00",
            "field": "stage",
            "old_value": "discovery",
            "new_value": "proposal",
        },
    ],
    "activities": [
        {"type": "call", "occurred_at": "2025-10-08T14:00:00", "duration_min": 20},
        {"type": "meeting", "occurred_at": "2025-11-20T15:00:00", "duration_min": 45},
        {"type": "demo", "occurred_at": "2025-11-25T10:00:00", "duration_min": 60},
    ],
    "emails": [
        {"direction": "outbound", "sent_at": "2025-11-21T12:00:00"},
        {
            "direction": "inbound",
            "sent_at": "2025-11-28T09:12:00",
            "p_negative": 0.05,
            "p_neutral": 0.25,
            "p_positive": 0.70,
        },
    ],
    "top_k": 3,
}
"""A request the tests and the README share."""


@bentoml.service(
    name="spm-ml",
    traffic={"timeout": 60},
    workers=settings.serving_workers(),
    logging={"access": {"enabled": settings.access_log()}},
    tracing={"excluded_urls": [] if settings.tracing() else list(UNTRACED_ROUTES)},
    service_class=DocumentedService,
)
class SpmMlService:
    """Explained deal scores over HTTP (more endpoints join as the model families land)."""

    def __init__(self) -> None:
        from spm_ml.data.io import load_tables
        from spm_ml.nlp.signals import with_email_scores
        from spm_ml.scoring import DealScorer

        work = settings.workdir()
        registry.use_local_store(work)
        loaded = registry.load_model(DEAL_MODEL, alias=registry.CHAMPION)
        self.model_ref = ModelRef(name=DEAL_MODEL, version=loaded.version, alias=registry.CHAMPION)
        self.sentiment = _sentiment_model(loaded.record)
        # The organisation's context, indexed once: reps, accounts, track records and each
        # known deal's own rows; its emails scored once (cached), bodies dropped at once.
        tables = load_tables(settings.data_source(work))
        if self.sentiment is not None:
            tables = with_email_scores(
                tables, cache=settings.email_scores_path(work), model=self.sentiment
            )
        self.scorer = DealScorer.for_model(loaded, tables)
        self.scorer.context.index_rows()  # cut-out index for scoring by id, before requests
        # The context holds millions of long-lived Python objects (ids and text in object
        # columns): keep the cyclic garbage collector from rescanning them during requests.
        gc.freeze()
        # And collect cycles rarely: with the default thresholds (700, 10, 10) a request
        # allocates enough to start collections whose pauses made the slowest 1% of answers
        # (benchmarks/serving_speed.py (b), 500/s: p99 88.6 ms with them, 17.9 ms with these;
        # docs/benchmarks.md).  Freed-by-refcount memory is unaffected; only cycles wait.
        gc.set_threshold(100_000, 50, 1000)
        self.label = (loaded.record.label if loaded.record else {}).get("definition", "won")
        self.batcher = MicroBatcher(self._score_batch, max_batch_size=64)
        logger.info("loaded %s version %s", DEAL_MODEL, self.model_ref.version)

    @bentoml.api(route="/v1/deals/score")
    async def score_deal(self, request: DealScoreRequest, /) -> DealScore:
        """Win probability of one open deal and the top SHAP drivers behind it.

        Concurrent requests are featurised and explained together (serving/batching.py).
        """
        result = await self.batcher.submit(request)
        if result.error is not None:
            raise http_error(result.error)
        return DealScore(
            deal_id=result.deal_id,
            as_of=result.as_of.to_pydatetime(),
            probability=result.probability,
            drivers=[Driver(**d) for d in result.drivers],
            model=self.model_ref,
            label=self.label,
        )

    def _score_batch(self, requests: Sequence[DealScoreRequest]) -> list[DealResult]:
        """One vectorised call for every request of a batch (on the scoring thread)."""
        return self.scorer.score_requests(
            [deal_request(r) for r in _with_scored_text(requests, self.sentiment)]
        )


def deal_request(request: DealScoreRequest) -> DealRequest:
    """The scorer's view of a validated HTTP request (naive UTC times, text already gone)."""
    as_of = _utc_naive(request.as_of or datetime.now(UTC))
    if request.deal is None:
        return DealRequest(as_of=as_of, deal_id=request.deal_id, top_k=request.top_k)
    return DealRequest(
        as_of=as_of,
        deal=request.deal.model_dump(),
        history=[h.model_dump() for h in request.history],
        activities=[a.model_dump() for a in request.activities],
        emails=[e.as_row() for e in request.emails],
        top_k=request.top_k,
    )


def _with_scored_text(
    requests: Sequence[DealScoreRequest], sentiment
) -> Sequence[DealScoreRequest]:
    """Requests whose emails sent text get that text's scores; the text is dropped at once.

    All texts of a batch are scored in one call of the model the deal model was trained
    with; nothing of them is kept or logged.
    """
    with_text = [(r, e) for r in requests for e in r.emails if e.has_text]
    if not with_text or sentiment is None:
        return requests
    from spm_ml.nlp.signals import email_texts

    frame = pd.DataFrame(
        {"subject": [e.subject for _, e in with_text], "body": [e.body for _, e in with_text]}
    )
    scores = sentiment.score(email_texts(frame))
    for (_, email), (_, row) in zip(with_text, scores.iterrows(), strict=True):
        for column in ("p_negative", "p_neutral", "p_positive"):
            value = row[column]
            setattr(email, column, None if pd.isna(value) else float(value))
        email.subject = email.body = None
    return requests


def _sentiment_model(record):
    """The sentiment model the deal model's email-tone features were computed with.

    ``None`` when the model reads no email tone.  The default model is the only one the
    service can rebuild; a model trained on scores from another one is served with a
    warning (its tone features would drift).
    """
    if record is None or not record.feature_config.get("email_sentiment", True):
        return None
    from spm_ml.nlp import sentiment_fingerprint
    from spm_ml.nlp.batch import resolve_model

    model = resolve_model(None)
    if record.sentiment_model and sentiment_fingerprint(model) != record.sentiment_model:
        logger.warning(
            "the deal model's email tone came from sentiment model %s, the service has %s: "
            "tone features may differ from training",
            record.sentiment_model,
            sentiment_fingerprint(model),
        )
    return model


# Token, JSON-only, body-size limit and log redaction for every request (serving/middleware.py).
SpmMlService.add_asgi_middleware(RequestGuard)


def _utc_naive(moment: datetime) -> pd.Timestamp:
    """Times inside spm-ml are naive UTC; clients may send any offset."""
    stamp = pd.Timestamp(moment)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)
