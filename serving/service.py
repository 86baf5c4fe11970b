"""The spm-ml HTTP service: one BentoML service for every model of the MLflow registry.

Start it with ``spm-ml serve [--workdir DIR] [--data SOURCE] [--port P]``.  At start-up each
worker points MLflow at the work folder's store, reads the organisation's tables (deals and
reps are looked up there by id; context for features such as a rep's track record) and
loads the ``champion`` of every model (:class:`serving.models.ModelSet`).  A family without
a champion leaves its endpoints answering 503 with what to run.

Every endpoint takes a list and answers one result per item, each with its status and the
model versions that produced it (docs/api.md).  When ``spm-ml promote`` moves a champion,
the service picks it up: every ``SPM_ML_RELOAD_SECONDS`` (default 60) it asks the registry,
and ``POST /admin/reload`` asks at once; the new set is loaded in the background and swapped
in one assignment, so requests in flight finish on the models they started with.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import bentoml
import pandas as pd
from starlette.responses import Response

from serving.auth import Caller, caller_of
from serving.batching import MicroBatcher
from serving.errors import item_error, unavailable
from serving.logs import note_models
from serving.middleware import RequestGuard
from serving.models import ModelSet, load_model_set, registry_versions
from serving.openapi import DocumentedService
from serving.rep_schemas import RepCoachingList, RepRiskList
from serving.report import MOUNT as REPORT_MOUNT
from serving.report import ReportPages, report_app
from serving.schemas import (
    DealCoachingList,
    DealCoachingResult,
    DealCoachings,
    DealScore,
    DealScoreList,
    DealScoreRequest,
    DealScores,
    Driver,
    EmailList,
    EmailSentiment,
    EmailSentiments,
    ItemResult,
    ModelRef,
    Recommendation,
    ReloadAnswer,
    RepCoachings,
    RepRisks,
    ResultList,
    WhatIfList,
    WhatIfRequest,
    WhatIfResult,
    WhatIfs,
    WordedDriver,
)
from serving.texts import score_texts
from spm_ml import settings
from spm_ml.nlp.pyfunc import SENTIMENT_MODEL_NAME
from spm_ml.scoring import DealRequest, DealResult

logger = logging.getLogger(__name__)

DEAL_MODEL = "deal-win"
ANONYMOUS = Caller(name="anonymous", role="admin")
"""Who a request without a caller is: the service without the auth middleware (no tokens
configured) serves everything, as it did before roles existed."""
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
"""A posted deal (one item of ``/v1/deals/score``) the tests and the README share."""
EXAMPLE_DEALS = {"deals": [EXAMPLE_REQUEST]}
"""A ``/v1/deals/score`` request: a list of one deal."""


@bentoml.service(
    name="spm-ml",
    traffic={"timeout": 60},
    workers=settings.serving_workers(),
    logging={"access": {"enabled": settings.access_log()}},
    tracing={"excluded_urls": [] if settings.tracing() else list(UNTRACED_ROUTES)},
    service_class=DocumentedService,
)
class SpmMlService:
    """Deal scores, rep risk and email sentiment over HTTP, from the registry's champions."""

    def __init__(self) -> None:
        from spm_ml.data.io import load_tables

        self.workdir = settings.workdir()
        # The organisation's tables, read once: every model set's context is built on them.
        self.source = load_tables(settings.data_source(self.workdir))
        self.models: ModelSet = load_model_set(self.workdir, self.source)
        """The set every request reads once, at its start: replaced whole by a reload."""
        freeze_heap()
        self.batcher = MicroBatcher(self._score_batch, max_batch_size=64)
        # concurrent coaching requests are coached together too, on the same thread: a
        # single deal costs about as much to featurise alone as beside thirty others
        self.coach_batcher = MicroBatcher(
            self._coach_batch, max_batch_size=64, executor=self.batcher.executor
        )
        self._reps = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rep-scoring")
        self.reports = ReportPages(settings.report_source(self.workdir))
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        every = settings.reload_seconds()
        if every > 0:
            threading.Thread(
                target=self._poll, args=(every,), name="model-polling", daemon=True
            ).start()

    # -- deals ----------------------------------------------------------------------------
    @bentoml.api(route="/v1/deals/score")
    async def score_deals(self, request: DealScoreList, /, ctx: bentoml.Context) -> DealScores:
        """Win probability of each open deal and the top SHAP drivers behind it.

        Deals come by id (looked up in the service's data source as of ``as_of``, default
        now) or posted with their history and events.  Concurrent requests are featurised
        and explained together (serving/batching.py).
        """
        models = self.models
        why = models.unavailable(DEAL_MODEL)
        if why:
            return unavailable(ctx, why)
        scored = await self.batcher.submit_many(request.deals)
        return answer(ctx, DealScores, [deal_score(result, used) for result, used in scored])

    def _score_batch(
        self, requests: Sequence[DealScoreRequest]
    ) -> list[tuple[DealResult, ModelSet]]:
        """One vectorised call for every deal of a batch (on the scoring thread), by the
        model set current when the batch starts."""
        models = self.models
        scorer = models.scorer
        texts_scored = _with_scored_text(requests, models.deal_sentiment)
        results = scorer.score_requests([deal_request(r) for r in texts_scored])
        return [(result, models) for result in results]

    @bentoml.api(route="/v1/deals/coaching")
    async def coach_deals(
        self, request: DealCoachingList, /, ctx: bentoml.Context
    ) -> DealCoachings:
        """Each deal's probability, drivers in plain words, and the levers (actions a rep
        can take) that would raise it most, ranked by the model's re-scored probability.

        Every lever of every deal is re-scored in one call of the model (a what-if); the
        uplift is the model's estimate, not a promise (``note``)."""
        models = self.models
        why = models.unavailable(DEAL_MODEL)
        if why:
            return unavailable(ctx, why)
        results = await self.coach_batcher.submit_many(
            [(deal, request.max_recommendations) for deal in request.deals]
        )
        return answer(ctx, DealCoachings, results)

    def _coach_batch(
        self, items: Sequence[tuple[DealScoreRequest, int]]
    ) -> list[DealCoachingResult]:
        """One coaching call for every deal of a batch (on the scoring thread), by the model
        set current when the batch starts."""
        return coach_items(self.models, [d for d, _ in items], [k for _, k in items])

    @bentoml.api(route="/v1/deals/what-if")
    async def what_if(self, request: WhatIfList, /, ctx: bentoml.Context) -> WhatIfs:
        """Each deal re-scored with feature values changed (``changes``: feature -> value):
        its probability now and with the changes, and the changed row's drivers.  A feature
        the model does not read is refused (422 for the item, naming it)."""
        models = self.models
        why = models.unavailable(DEAL_MODEL)
        if why:
            return unavailable(ctx, why)
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self.batcher.executor, what_ifs, models, request.deals)
        return answer(ctx, WhatIfs, results)

    # -- reps -----------------------------------------------------------------------------
    @bentoml.api(route="/v1/reps/risk")
    async def rep_risk(self, request: RepRiskList, /, ctx: bentoml.Context) -> RepRisks:
        """Each rep's risk of missing quota in the period open at ``as_of`` (P(miss),
        expected attainment with its 80% range, drivers in words) and, for admins and the
        rep's own manager, top performers' attrition risk.

        Reps are looked up by id in the service's data source as of ``as_of`` (default now).
        """
        from serving.reps import rep_risks

        return await self._about_reps(ctx, request, rep_risks, RepRisks)

    @bentoml.api(route="/v1/reps/coaching")
    async def coach_reps(self, request: RepCoachingList, /, ctx: bentoml.Context) -> RepCoachings:
        """Coaching each rep on quota (``spm_ml.coaching.reps``): P(miss) and its drivers,
        the pipeline gap to an 80% chance of making quota, the open deals worth rescuing,
        activity against the rep's own baseline; attrition risk for admins and the rep's
        manager only.  Reps are looked up by id as of ``as_of`` (default now)."""
        from serving.rep_coaching import rep_coachings

        return await self._about_reps(ctx, request, rep_coachings, RepCoachings)

    async def _about_reps(self, ctx: bentoml.Context, request, work, kind) -> Response:
        """``work(models, reps, as_of, caller, workdir)`` on the rep-scoring thread: the
        quota-risk and deal-win champions are needed (else 503)."""
        models = self.models
        why = models.unavailable(DEAL_MODEL, "quota-risk")
        if why:
            return unavailable(ctx, why)
        moments = [_utc_naive(q.as_of or datetime.now(UTC)) for q in request.reps]
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(
            self._reps, work, models, request.reps, moments, caller(ctx), self.workdir
        )
        return answer(ctx, kind, results)

    # -- managers' pages ------------------------------------------------------------------
    def manager_report(self) -> tuple[ReportPages, Caller]:
        """``GET /v1/managers/{id}/report`` (serving/report.py, mounted below): the batch
        run's pages and who a request without a caller is."""
        return self.reports, ANONYMOUS

    # -- emails ---------------------------------------------------------------------------
    @bentoml.api(route="/v1/emails/sentiment")
    async def email_sentiment(self, request: EmailList, /, ctx: bentoml.Context) -> EmailSentiments:
        """Calibrated tone probabilities of each email (negative, neutral, positive), or an
        abstention when the text gives nothing to judge.  The text is scored in memory and
        dropped: never logged, stored or echoed."""
        models = self.models
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(
            self.batcher.executor, email_sentiments, models, request.emails
        )
        return answer(ctx, EmailSentiments, results)

    # -- model updates --------------------------------------------------------------------
    @bentoml.api(route="/admin/reload")
    async def reload(self, ctx: bentoml.Context) -> ReloadAnswer:
        """Load the registry's current champions now (admins only); requests in flight
        finish on the models they started with.  With several workers, this one reloads at
        once and the others at their next poll (``SPM_ML_RELOAD_SECONDS``)."""
        if caller(ctx).role != "admin":
            ctx.response.status_code = 403
            return Response(
                b'{"error": "POST /admin/reload is for admins"}',
                status_code=403,
                media_type="application/json",
            )
        loop = asyncio.get_running_loop()
        before = self.models.versions()
        models = await loop.run_in_executor(None, self.reload_models)
        now = models.versions()
        changed = sorted(name for name, version in now.items() if before.get(name) != version)
        note_models(ctx, now)
        return ReloadAnswer(
            changed=changed,
            models=[ModelRef.of(name, version) for name, version in now.items()],
            missing=models.missing,
        )

    def reload_models(self) -> ModelSet:
        """If the registry's champions moved, build a new model set (reusing what did not
        change) and swap it in; the set served afterwards."""
        with self._reload_lock:  # one reload at a time; requests never wait for it
            current = self.models
            versions = registry_versions(self.workdir)
            if current.same_as(versions):
                return current
            fresh = load_model_set(self.workdir, self.source, current, versions)
            self.models = fresh  # one assignment: atomic for every reader
            freeze_heap()
            return fresh

    def _poll(self, every: int) -> None:
        while not self._stop.wait(every):
            try:
                self.reload_models()
            except Exception:  # a registry hiccup must not end polling; the old set serves
                logger.exception(
                    "polling the model registry failed; still serving %s", self.models.versions()
                )


def freeze_heap() -> None:
    """Keep the cyclic garbage collector off the loaded context during requests.

    The context holds millions of long-lived Python objects (ids and text in object
    columns): frozen, they are never rescanned.  And cycles are collected rarely: with the
    default thresholds (700, 10, 10) a request allocates enough to start collections whose
    pauses made the slowest 1% of answers (benchmarks/serving_speed.py (b), 500/s: p99
    88.6 ms with them, 17.9 ms with these; docs/benchmarks.md).  Memory freed by reference
    counting is unaffected.  The serving benchmark's in-process reference calls it too.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def caller(ctx: bentoml.Context) -> Caller:
    """The request's caller; without one (no auth middleware in front), an admin."""
    return caller_of(ctx) or ANONYMOUS


def answer(ctx: bentoml.Context, kind: type[ResultList], results: list[ItemResult]) -> Response:
    """The HTTP answer for per-item ``results``: 200 when any item was answered, else the
    items' status (their common one; 422 when they differ), ``error`` repeating the first
    item's.  The model versions used go to the request log (``logs.note_models``)."""
    used: dict[str, str] = {}
    for result in results:
        for ref in result.models:
            used[ref.name] = ref.version
    note_models(ctx, used)
    failed = [r for r in results if r.status != 200]
    status, error = 200, None
    if results and len(failed) == len(results):
        statuses = {r.status for r in failed}
        status = statuses.pop() if len(statuses) == 1 else 422
        error = failed[0].error
    body = kind(results=results, error=error) if error else kind(results=results)
    ctx.response.status_code = status
    return Response(
        body.model_dump_json(exclude_unset=True), status_code=status, media_type="application/json"
    )


def deal_score(result: DealResult, models: ModelSet) -> DealScore:
    """The answer item for one scored (or refused) deal."""
    refs = [ModelRef.of(DEAL_MODEL, models.version(DEAL_MODEL))]
    as_of = result.as_of.to_pydatetime()
    if result.error is not None:
        status, message = item_error(result.error)
        return DealScore(
            status=status, error=message, deal_id=result.deal_id, as_of=as_of, models=refs
        )
    return DealScore(
        status=200,
        deal_id=result.deal_id,
        as_of=as_of,
        probability=result.probability,
        drivers=[Driver(**d) for d in result.drivers],
        label=models.label,
        models=refs,
    )


def coachings(models: ModelSet, request: DealCoachingList) -> list[DealCoachingResult]:
    """Every deal of a request coached in one call of the scorer (its levers included)."""
    n = len(request.deals)
    return coach_items(models, request.deals, [request.max_recommendations] * n)


def coach_items(
    models: ModelSet, deals: Sequence[DealScoreRequest], max_recommendations: Sequence[int]
) -> list[DealCoachingResult]:
    """Deals (of one request or of several, each with its own ``max_recommendations``)
    coached in one call of the scorer, levers included."""
    from spm_ml.coaching.deals import DealCoaching

    deals = _with_scored_text(deals, models.deal_sentiment)
    coached = models.scorer.coach_requests(
        [deal_request(r) for r in deals], max_recommendations=max(max_recommendations)
    )
    refs = [ModelRef.of(DEAL_MODEL, models.version(DEAL_MODEL))]
    results = []
    for item, most in zip(coached, max_recommendations, strict=True):
        if not isinstance(item, DealCoaching):
            status, message = item_error(item.error)
            results.append(
                DealCoachingResult(
                    status=status,
                    error=message,
                    deal_id=item.deal_id,
                    as_of=item.as_of.to_pydatetime(),
                    models=refs,
                )
            )
            continue
        results.append(
            DealCoachingResult(
                status=200,
                deal_id=item.deal_id,
                as_of=item.as_of.to_pydatetime(),
                probability=item.probability,
                drivers=[WordedDriver(**d) for d in item.drivers],
                recommendations=[Recommendation(**vars(r)) for r in item.recommendations[:most]],
                context=[WordedDriver(**d) for d in item.context],
                note=item.note,
                label=models.label,
                models=refs,
            )
        )
    return results


def what_ifs(models: ModelSet, items: Sequence[WhatIfRequest]) -> list[WhatIfResult]:
    """Every what-if of a request: the changes (and feature rows) checked against the
    model's features, then re-scored in one call for the deals (featurised together) and
    one for the rows sent as feature values."""
    import numpy as np

    scorer = models.scorer
    model = scorer.model
    refs = [ModelRef.of(DEAL_MODEL, models.version(DEAL_MODEL))]
    results: dict[int, WhatIfResult] = {}

    def refused(i: int, status: int, message: str, as_of: pd.Timestamp) -> None:
        results[i] = WhatIfResult(
            status=status,
            error=message,
            deal_id=items[i].label,
            as_of=as_of.to_pydatetime(),
            models=refs,
        )

    deals, rows = [], []
    for i, item in enumerate(items):
        problem = unusable_changes(model, item.changes)
        if problem is None and item.features is not None:
            problem = unusable_row(model, item.features)
        if problem is not None:
            refused(i, 422, problem, _utc_naive(item.as_of))
        else:
            (rows if item.features is not None else deals).append(i)
    texts_scored = _with_scored_text([items[i] for i in deals], models.deal_sentiment)
    asked = [deal_request(r) for r in texts_scored]
    features, kept, refusals = scorer.request_features(asked) if asked else (None, [], {})
    for k, error in refusals.items():
        refused(deals[k], *item_error(error), asked[k].as_of)
    if features is not None:
        _rescored(models, features, [deals[k] for k in kept], items, results, refs)
    if rows:
        columns = {
            name: np.array([items[i].features[name] for i in rows], dtype=object)
            for name in model.feature_names_in_
        }
        columns["deal_id"] = np.array([items[i].label for i in rows], dtype=object)
        columns["as_of"] = np.array([_utc_naive(items[i].as_of) for i in rows], dtype=object)
        _rescored(models, columns, rows, items, results, refs)
    return [results[i] for i in range(len(items))]


def _rescored(models: ModelSet, features, positions: list[int], items, results, refs) -> None:
    """``features`` (one row per position of ``items``) re-scored with their items'
    changes in one call; the results go into ``results`` by position."""
    from spm_ml.coaching.deals import WhatIfError, what_if

    top_k = max(items[i].top_k for i in positions)
    as_of = [pd.Timestamp(t) for t in features["as_of"]]
    try:
        now, changed, drivers = what_if(
            models.scorer.model, features, [items[i].changes for i in positions], top_k=top_k
        )
    except WhatIfError as error:  # unusable_changes lets nothing through that ends here
        for i, moment in zip(positions, as_of, strict=True):
            results[i] = WhatIfResult(
                status=422,
                error=f"changes: {error}",
                deal_id=items[i].label,
                as_of=moment.to_pydatetime(),
                models=refs,
            )
        return
    for row, i in enumerate(positions):
        results[i] = WhatIfResult(
            status=200,
            deal_id=items[i].label,
            as_of=as_of[row].to_pydatetime(),
            probability=float(now[row]),
            changed_probability=float(changed[row]),
            uplift_pp=100.0 * float(changed[row] - now[row]),
            drivers=[WordedDriver(**d) for d in drivers[row][: items[i].top_k]],
            label=models.label,
            models=refs,
        )


def unusable_changes(model, changes: dict, field: str = "changes") -> str | None:
    """Why a what-if's ``changes`` cannot be applied to ``model``'s features (the field
    named first), or ``None``: every name must be a feature the model reads, a category
    gets text, a number a number (JSON already refused NaN and infinities)."""
    names = set(model.feature_names_in_)
    unknown = [name for name in changes if name not in names]
    if unknown:
        return (
            f"{field}: the model reads no feature {', '.join(repr(n) for n in unknown)}; "
            "its features are listed in the deal-win model card"
        )
    for name, value in changes.items():
        category = name in model.categories_
        if category and value is not None and not isinstance(value, str):
            return f"{field}.{name}: {name} is a category: send its value as text"
        if not category and isinstance(value, str):
            return f"{field}.{name}: {name} is a number: send a finite number"
    return None


def unusable_row(model, features: dict) -> str | None:
    """Why a what-if's feature row cannot be scored: a feature the model reads is missing
    (null says "unknown"; absent is refused, so a typo is never scored as missing), or as
    for :func:`unusable_changes`."""
    missing = [name for name in model.feature_names_in_ if name not in features]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        return (
            f"features: every feature the model reads is needed (null for unknown); "
            f"missing {shown}{more}"
        )
    return unusable_changes(model, features, "features")


def email_sentiments(models: ModelSet, emails) -> list[EmailSentiment]:
    """Every email of a request scored in one call of the sentiment champion; the texts are
    dropped with the frame."""
    from spm_ml.nlp.signals import email_texts

    frame = pd.DataFrame({"subject": [e.subject for e in emails], "body": [e.body for e in emails]})
    scores = models.sentiment.score(email_texts(frame))
    refs = [ModelRef.of(SENTIMENT_MODEL_NAME, models.sentiment_version)]
    results = []
    for row in scores.itertuples(index=False):
        if pd.isna(row.label):
            reason = "not English" if not row.is_english else "nothing to judge after cleaning"
            results.append(EmailSentiment(status=200, abstained=True, reason=reason, models=refs))
            continue
        results.append(
            EmailSentiment(
                status=200,
                label=str(row.label),
                p_negative=float(row.p_negative),
                p_neutral=float(row.p_neutral),
                p_positive=float(row.p_positive),
                abstained=False,
                models=refs,
            )
        )
    return results


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
    """Requests whose emails sent text get that text's scores (:func:`score_texts`)."""
    score_texts([e for r in requests for e in r.emails], sentiment)
    return requests


# Token, JSON-only, body-size limit and log redaction for every request (serving/middleware.py).
SpmMlService.add_asgi_middleware(RequestGuard)
# The manager's page, HTML by GET (serving/report.py): a route BentoML's POST APIs cannot be.
SpmMlService.mount_asgi_app(
    report_app(lambda: bentoml.get_current_service().manager_report()), path=REPORT_MOUNT
)


def _utc_naive(moment: datetime) -> pd.Timestamp:
    """Times inside spm-ml are naive UTC; clients may send any offset."""
    stamp = pd.Timestamp(moment)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)
