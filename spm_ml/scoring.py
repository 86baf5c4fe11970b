"""Scoring deals with a fitted model: probabilities and top drivers, for API and batch alike.

Both the service and the batch job go through :class:`DealScorer`, so an explained score
means the same thing wherever it is read.  The scorer holds a :class:`DealContext` built
once from the organisation's tables (reps, accounts, track records, each deal's own rows),
so a request's features are built from that request's rows plus the context, by the same
feature functions training used: the cost of a request does not grow with the organisation.

Requests come in two shapes (:class:`DealRequest`): a deal the data source knows, by id, or
a deal posted with its own history and events.  A posted deal must carry what the training
features are built from (its initial stage, amount and expected close date, and every
change since); if it carries no history and its id is known, the history and events come
from the data source; otherwise the request is refused naming what is missing.  Nothing is
guessed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from spm_ml.coaching.deals import DealCoaching, coach_deals
from spm_ml.data.overlay import PostedDeal, posted_deals_tables
from spm_ml.data.tables import Tables
from spm_ml.errors import SpmMlError
from spm_ml.features.context import DealContext
from spm_ml.features.custom_fields import CustomField
from spm_ml.features.deals import (
    DealFeatureConfig,
    deal_feature_columns,
    deal_features,
    open_deals_at,
)
from spm_ml.models.deal_win import custom_fields_of, feature_config_of
from spm_ml.models.gbm import CalibratedGBM
from spm_ml.registry import LoadedModel

REQUIRED_HISTORY = ("stage", "amount", "expected_close_at")
"""Fields whose initial value (at ``created_at``) a posted deal's history must carry."""


class RequestError(SpmMlError, ValueError):
    """A scoring request the service cannot score as asked; ``field`` names the culprit."""

    status = 422

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownDealError(RequestError, LookupError):
    """A deal id the data source does not know."""

    status = 404


@dataclass(frozen=True)
class DealRequest:
    """One deal to score as of a moment: known by id, or posted with its own events.

    ``emails`` carry metadata and derived scores only (``p_negative``, ``p_neutral``,
    ``p_positive``); text is scored and dropped before a request gets here.
    """

    as_of: pd.Timestamp
    deal_id: str | None = None
    deal: dict[str, Any] | None = None
    history: Sequence[dict[str, Any]] = field(default_factory=tuple)
    activities: Sequence[dict[str, Any]] = field(default_factory=tuple)
    emails: Sequence[dict[str, Any]] = field(default_factory=tuple)
    top_k: int = 3

    @property
    def id(self) -> str:
        return str(self.deal_id if self.deal is None else self.deal["deal_id"])


@dataclass(frozen=True)
class DealResult:
    """A scored request: probability and drivers, or the reason it was refused."""

    deal_id: str
    as_of: pd.Timestamp
    probability: float | None = None
    drivers: list[dict] = field(default_factory=list)
    error: RequestError | None = None


class DealScorer:
    """A fitted deal-win model plus the organisation context its features need."""

    def __init__(
        self,
        model: CalibratedGBM,
        context: Tables | DealContext,
        feature_config: DealFeatureConfig | None = None,
        custom_fields: Sequence[CustomField] | None = None,
    ) -> None:
        self.model = model
        self.feature_config = feature_config or DealFeatureConfig()
        if isinstance(context, Tables):
            context = DealContext.build(context, self.feature_config, custom_fields=custom_fields)
        self.context = context

    @classmethod
    def for_model(cls, loaded: LoadedModel, tables: Tables) -> DealScorer:
        """A scorer for a registered model over ``tables``, built the way it was trained:
        its own feature configuration and the custom fields its training screen accepted."""
        return cls(
            loaded.model,
            tables,
            feature_config_of(loaded.record),
            custom_fields=custom_fields_of(loaded.record),
        )

    @property
    def tables(self) -> Tables:
        return self.context.tables

    def for_workers(self) -> DealScorer:
        """This scorer without the organisation's per-deal tables: what a Spark worker keeps,
        receiving each chunk's own rows (:meth:`chunk_rows`) to score with :meth:`over`."""
        return DealScorer(self.model, self.context.without_deal_rows(), self.feature_config)

    def over(self, tables: Tables) -> DealScorer:
        """This scorer over ``tables``: a chunk's own rows (:meth:`chunk_rows`)."""
        return DealScorer(self.model, self.context.over(tables), self.feature_config)

    def chunk_rows(self, snapshots: pd.DataFrame) -> Tables:
        """The rows the deals of ``snapshots`` are featurised from: their own (deal,
        history, activities, emails; :meth:`~spm_ml.features.context.DealContext.own_rows`)
        and the organisation's small tables.  ``score_deal_chunk(self.over(rows), ...)``
        gives the rows ``score_deal_chunk(self, ...)`` gives."""
        positions = self.context.deal_positions(snapshots["deal_id"])
        if positions is None or (positions < 0).any():
            return self.tables  # the whole path names the unknown deal
        return self.context.own_rows(positions)

    # -- batch: deals of the context ------------------------------------------------------
    def score(
        self,
        snapshots: pd.DataFrame,
        top_k: int = 3,
        keep: Sequence[str] = (),
        coach: bool = False,
    ) -> pd.DataFrame:
        """Probability and ``top_k`` drivers for each ``(deal_id, as_of)`` of the context.

        ``keep`` names feature columns to return beside them (the batch job's stage, amount
        and email-tone signals: the values the model read, not a second computation); a
        name the feature set does not have comes back empty.  With ``coach`` the drivers
        carry their plain words and the deal's recommendations come beside them
        (:func:`~spm_ml.coaching.deals.coach_deals`: the same probabilities and drivers,
        scored in the same call as the levers).
        """
        features = deal_features(self.tables, snapshots, self.feature_config, self.context)
        scored = self._coached(features, top_k) if coach else self._scored(features, top_k)
        for name in keep:
            scored[name] = features[name].to_numpy() if name in features else np.nan
        return scored

    def _coached(self, features: pd.DataFrame, top_k: int) -> pd.DataFrame:
        out = features[["deal_id", "as_of"]].copy()
        coached = coach_deals(self.model, features, top_k=top_k)
        out["probability"] = [c.probability for c in coached]
        out["drivers"] = [c.drivers for c in coached]
        out["recommendations"] = [[r.as_dict() for r in c.recommendations] for c in coached]
        return out

    def score_open_deals(self, as_of: pd.Timestamp, top_k: int = 3) -> pd.DataFrame:
        """Every deal open at ``as_of``, scored and explained, with its rep and amount."""
        snapshots = open_deals_at(self.tables, as_of)
        scored = self.score(snapshots, top_k)
        deals = self.tables.deals.set_index("deal_id")
        scored.insert(1, "rep_id", deals.loc[scored["deal_id"], "rep_id"].to_numpy())
        return scored

    def _scored(self, features: pd.DataFrame, top_k: int) -> pd.DataFrame:
        # the model reads its own columns (counts as floats) from the feature frame
        out = features[["deal_id", "as_of"]].copy()
        probability, drivers = self.model.score_and_explain(features, top_k)
        out["probability"] = probability
        if top_k:
            out["drivers"] = drivers
        return out

    # -- requests: the API ------------------------------------------------------------------
    def score_requests(self, requests: Sequence[DealRequest]) -> list[DealResult]:
        """Score many requests in one vectorised call; refused ones carry their error."""
        features, kept, refused = self.request_features(requests)
        results: dict[int, DealResult] = {
            i: DealResult(requests[i].id, requests[i].as_of, error=e) for i, e in refused.items()
        }
        if features is not None:
            top_k = max(r.top_k for r in requests)
            probability, drivers = self.model.score_and_explain(features, top_k)
            for row, i in enumerate(kept):
                results[i] = DealResult(
                    deal_id=requests[i].id,
                    as_of=requests[i].as_of,
                    probability=float(probability[row]),
                    drivers=drivers[row][: requests[i].top_k] if top_k else [],
                )
        return [results[i] for i in range(len(requests))]

    def coach(self, snapshots: pd.DataFrame, top_k: int = 3) -> list[DealCoaching]:
        """Drivers in words and ranked recommendations for deals of the context (batch)."""
        features = deal_features(self.tables, snapshots, self.feature_config, self.context)
        return coach_deals(self.model, features, top_k=top_k)

    def coach_requests(
        self, requests: Sequence[DealRequest], max_recommendations: int = 3
    ) -> list[DealCoaching | DealResult]:
        """:meth:`coach` for API requests: a :class:`DealCoaching` per scored request, the
        refused ones as a :class:`DealResult` carrying the error."""
        features, kept, refused = self.request_features(requests)
        results: dict[int, DealCoaching | DealResult] = {
            i: DealResult(requests[i].id, requests[i].as_of, error=e) for i, e in refused.items()
        }
        if features is not None:
            top_k = max(r.top_k for r in requests)
            coached = coach_deals(
                self.model, features, top_k=top_k, max_recommendations=max_recommendations
            )
            for coaching, i in zip(coached, kept, strict=True):
                results[i] = replace(coaching, drivers=coaching.drivers[: requests[i].top_k])
        return [results[i] for i in range(len(requests))]

    def request_features(
        self, requests: Sequence[DealRequest]
    ) -> tuple[dict[str, np.ndarray] | None, list[int], dict[int, RequestError]]:
        """The feature columns of every request the scorer accepts, in one vectorised call.

        Returns the columns (``None`` when every request was refused), the positions of the
        accepted requests (the columns' rows, in order; ``deal_id`` is each request's id)
        and the refused requests' errors by position.  Each posted deal's rows get a private
        deal key inside the batch, so two clients posting deals with the same id at the
        same moment never see each other's events; deals scored by id keep their id (their
        rows are the data source's, whoever asks).
        """
        posted: list[PostedDeal] = []
        keys, as_of, in_context, refused = [], [], [], {}
        by_id: list[str] = []  # deals of the data source: cut out together, in one go
        for i, request in enumerate(requests):
            key = f"\x00{i}"
            try:
                rows = self._request_rows(request, key)
            except RequestError as error:
                refused[i] = error
                continue
            if rows is None:  # a known deal's rows are the same for every as_of: its id
                by_id.append(request.id)
                key = request.id
            else:
                posted.append(rows)
            keys.append(key)
            as_of.append(request.as_of)
            in_context.append(self.context.knows(request.id))
        kept = [i for i in range(len(requests)) if i not in refused]
        if not kept:
            return None, kept, refused
        parts: list[Tables] = []
        if by_id:
            parts.append(self.context.rows_for(by_id))
        if posted:  # every posted deal of the batch typed in one go
            parts.append(posted_deals_tables(posted))
        tables = self.context.combine(parts)
        snapshots = {
            "deal_id": pd.Series(keys, dtype=object),
            "as_of": np.array(as_of, dtype="datetime64[ns]"),
            "in_context": np.array(in_context, dtype=bool),
        }
        # a few rows: scored from the feature arrays, no frame built (same numbers)
        features = deal_feature_columns(tables, snapshots, self.feature_config, self.context)
        features["deal_id"] = np.array([requests[i].id for i in kept], dtype=object)
        return features, kept, refused

    def _request_rows(self, request: DealRequest, key: str) -> PostedDeal | None:
        """The request's own rows under deal key ``key``, checked for what features need.

        ``None`` for a deal scored by id: its rows are cut from the context with the
        batch's other known deals.
        """
        known = self.context.knows(request.id)
        rows = None
        if request.deal is None:
            if not known:
                raise UnknownDealError(
                    f"deal {request.id!r} is not in the service's data source", "deal_id"
                )
            created, closed = self.context.created_and_closed(request.id)
        else:
            created, closed = pd.Timestamp(request.deal["created_at"]), pd.NaT
            self._check_known_entities(request)
            if not request.history and known:
                # the client sent the deal as it is now; its past comes from the data source
                source = self.context.rows_for([request.id], [key])
                rows = PostedDeal(
                    request.deal,
                    key,
                    history=source.deal_history,
                    activities=request.activities or source.activities,
                    emails=request.emails or source.emails,
                )
            else:
                _check_history(request, created)
                rows = PostedDeal(
                    request.deal,
                    key,
                    history=request.history,
                    activities=request.activities,
                    emails=request.emails,
                )
            self._check_emails(request)
        if request.as_of <= created:
            raise RequestError(
                f"as_of {request.as_of} is not after the deal's creation ({created}): "
                "nothing about the deal is known yet",
                "as_of",
            )
        if pd.notna(closed) and closed <= request.as_of:
            raise RequestError(
                f"deal {request.id!r} closed at {closed}, before as_of; only open deals are scored",
                "as_of",
            )
        return rows

    def _check_known_entities(self, request: DealRequest) -> None:
        """A posted deal's rep and account must be the organisation's: their tenure, team,
        size and track record are features, and training never saw them missing."""
        reps, accounts = self.context.reps.index, self.context.accounts.index
        if request.deal["rep_id"] not in reps:
            raise RequestError(
                f"rep {request.deal['rep_id']!r} is not a rep of the service's data source",
                "deal.rep_id",
            )
        if request.deal["account_id"] not in accounts:
            raise RequestError(
                f"account {request.deal['account_id']!r} is not an account of the service's "
                "data source",
                "deal.account_id",
            )
        for i, change in enumerate(request.history):
            if change["field"] == "rep_id" and change["new_value"] not in reps:
                raise RequestError(
                    f"rep {change['new_value']!r} is not a rep of the service's data source",
                    f"history.{i}.new_value",
                )

    def _check_emails(self, request: DealRequest) -> None:
        if not self.feature_config.email_sentiment:
            return
        for i, email in enumerate(request.emails):
            if email.get("direction") != "inbound":
                continue  # the tone features read the buyer's emails only
            if any(email.get(c) is None for c in ("p_negative", "p_neutral", "p_positive")):
                raise RequestError(
                    "the model reads the tone of the buyer's emails: send each inbound "
                    "email's p_negative, p_neutral and p_positive, or its subject and body "
                    "to be scored",
                    f"emails.{i}",
                )


def _check_history(request: DealRequest, created: pd.Timestamp) -> None:
    """A posted deal's history must start with the initial values the features replay."""
    missing = []
    for name in REQUIRED_HISTORY:
        times = [pd.Timestamp(h["changed_at"]) for h in request.history if h["field"] == name]
        if not times or min(times) > created:
            missing.append(name)
    if missing:
        raise RequestError(
            "history must record the deal's initial "
            + ", ".join(missing)
            + " (a row per field dated at created_at, then one per change), as the CRM's "
            "field history does: training features replay them; or score a deal the "
            "service knows by deal_id",
            "history",
        )


def flatten_drivers(scored: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    """Driver lists as flat columns ``driver_1``, ``driver_1_value``, ``driver_1_shap``...

    Flat columns read well in a spreadsheet and in Parquet; ``drivers_json`` keeps the
    whole list for programs.
    """
    out = scored.drop(columns=["drivers"]).copy()
    for i in range(top_k):
        out[f"driver_{i + 1}"] = [
            d[i]["feature"] if len(d) > i else None for d in scored["drivers"]
        ]
        out[f"driver_{i + 1}_value"] = [
            None if len(d) <= i or d[i]["value"] is None else str(d[i]["value"])
            for d in scored["drivers"]
        ]
        out[f"driver_{i + 1}_shap"] = [
            d[i]["shap"] if len(d) > i else np.nan for d in scored["drivers"]
        ]
    out["drivers_json"] = [json.dumps(d) for d in scored["drivers"]]
    return out
