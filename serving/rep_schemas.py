"""A rep sent by id or as full records: the request bodies of ``/v1/reps/*``.

A coaching tool that holds its own CRM copy may post a rep with the rep's rows of every
contract table (``docs/data-contract.md``): the rep's attributes, quota and pay periods,
manager and team changes, the deals the rep owns now (open and closed) with their history,
activities and emails.  The service scores the rep *inside the organisation it was started
with*: the posted rows replace the rep's rows of the data source (or join it, for a rep it
does not know), because a rep's risk is partly relative (attrition is reported for the top
quarter of AEs; track records and team baselines come from everyone else).  Posted rows
obey the same bounds as a posted deal's (:mod:`serving.schemas`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from serving.schemas import (
    _FORBID,
    MAX_CUSTOM_FIELDS,
    MAX_EVENTS,
    ActivityType,
    Amount,
    CustomValue,
    DealIn,
    EmailIn,
    HistoryIn,
    Id,
    ItemList,
    Moment,
    Stage,
    TooManyItems,
    _date_order,
    _items,
)

MAX_REP_DEALS = 2_000
"""Deals per posted rep (a rep owning more is an export, not a request)."""
MAX_POSTED_REPS = 16
"""Posted reps per request: each distinct set of posted reps is scored in its own copy of the
organisation (about a second each), so a request may carry at most this many; more: 413."""


class PeriodIn(BaseModel):
    """A period of the rep's, from ``period_start`` to ``period_end`` (UTC)."""

    model_config = _FORBID

    period_start: Moment = Field(description="First moment of the period (UTC).")
    period_end: Moment = Field(description="End of the period (UTC); after period_start.")

    @field_validator("period_end")
    @classmethod
    def _ends_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("period_start")
        if start is not None and value <= start:
            raise _date_order("period_start", "period_end")
        return value


class QuotaIn(PeriodIn):
    """A quota period (a row of ``quotas``)."""

    quota_amount: Amount = Field(description="The period's quota, in the organisation's currency.")


class PayIn(PeriodIn):
    """A pay period (a row of ``compensation``)."""

    base_pay: Amount = Field(description="Base pay for the period.")
    target_incentive: Amount = Field(description="On-target incentive for the period.")
    paid_incentive: Amount | None = Field(
        default=None, description="Incentive paid for the period, once known."
    )


class RepChangeIn(BaseModel):
    """A change of the rep's manager or team (a row of ``rep_history``)."""

    model_config = _FORBID

    changed_at: Moment = Field(description="When it changed (UTC).")
    field: Literal["manager_id", "team"] = Field(description="What changed.")
    old_value: Id | None = Field(default=None, description="Before; empty when there was none.")
    new_value: Id | None = Field(default=None, description="After; empty for no manager (top).")


class OwnedDealIn(DealIn):
    """A deal the rep owns now, open or closed (a row of ``deals``).  Its own history,
    activities and emails go in the rep's lists, keyed by ``deal_id``."""

    rep_id: Id | None = Field(  # type: ignore[assignment]
        default=None, description="The posted rep (implied; if sent, the rep's id)."
    )
    stage: Stage = Field(default="prospecting", description="Current stage.")  # type: ignore[assignment]
    closed_at: Moment | None = Field(default=None, description="When it closed, if closed.")
    outcome: Literal["won", "lost"] | None = Field(
        default=None, description="won or lost, if closed."
    )

    @field_validator("stage", mode="before")
    @classmethod
    def _open(cls, value: Any) -> Any:  # a rep's closed deals are its track record
        return value

    @model_validator(mode="after")
    def _closed_consistently(self) -> OwnedDealIn:
        closed = self.stage in ("closed_won", "closed_lost")
        if closed != (self.closed_at is not None) or closed != (self.outcome is not None):
            raise PydanticCustomError(
                "closed_deal",
                "a closed deal (stage closed_won/closed_lost) has closed_at and outcome; "
                "an open one has neither",
            )
        if closed and self.outcome != self.stage.removeprefix("closed_"):
            raise PydanticCustomError(
                "closed_deal", "stage closed_won needs outcome won; closed_lost, lost"
            )
        if self.closed_at is not None and self.closed_at < self.created_at:
            raise _date_order("created_at", "closed_at")
        return self


class DealChangeIn(HistoryIn):
    """A change of one of the rep's deals (a row of ``deal_history``)."""

    deal_id: Id = Field(description="The posted deal it belongs to.")


class RepActivityIn(BaseModel):
    """An activity the rep logged (a row of ``activities``): on one of the rep's posted deals,
    or on an account without a deal."""

    model_config = _FORBID

    type: ActivityType = Field(description="Kind of activity.")
    occurred_at: Moment = Field(description="When it happened (UTC).")
    deal_id: Id | None = Field(
        default=None, description="The deal: a posted one, or one of the data source's."
    )
    rep_id: Id | None = Field(
        default=None, description="Who logged it: default this rep (a deal's earlier owner)."
    )
    account_id: Id | None = Field(
        default=None, description="The account; default the deal's. Required without a deal."
    )
    contact_id: Id | None = Field(default=None, description="The buyer contact, if logged.")
    duration_min: float | None = Field(
        default=None, ge=0, le=43_200.0, allow_inf_nan=False, description="Minutes, if logged."
    )

    @model_validator(mode="after")
    def _placed(self) -> RepActivityIn:
        if self.deal_id is None and self.account_id is None:
            raise PydanticCustomError(
                "activity_place", "an activity names its deal_id, its account_id, or both"
            )
        return self


class RepEmailIn(EmailIn):
    """An email on one of the rep's deals (a row of ``emails``), scores or text."""

    deal_id: Id = Field(description="The posted deal it belongs to.")
    rep_id: Id | None = Field(
        default=None, description="The rep on it: default this rep (a deal's earlier owner)."
    )


class RepIn(BaseModel):
    """A rep as the contract's tables hold it: the rep's row and the rep's rows of the others."""

    model_config = _FORBID

    rep_id: Id = Field(description="The rep's id (a rep of the data source or a new one).")
    name: Id | None = Field(default=None, description="The rep's name, shown in answers.")
    manager_id: Id | None = Field(
        default=None, description="The rep's manager now: a rep of the service's data source."
    )
    team: Id = Field(description="Team.")
    region: Id = Field(description="Region.")
    role: Id = Field(description="Role, e.g. AE (reps who sell are scored).")
    hire_date: Moment = Field(description="Hire date (UTC).")
    exit_date: Moment | None = Field(default=None, description="Exit date, if the rep left.")
    exit_reason: Literal["voluntary", "involuntary"] | None = Field(
        default=None, description="Why the rep left, if known."
    )
    custom_fields: dict[Annotated[str, StringConstraints(max_length=64)], CustomValue] = Field(
        default_factory=dict,
        max_length=MAX_CUSTOM_FIELDS,
        description="The rep's extra columns of the data source's reps table, by name.",
    )
    quotas: list[QuotaIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="Quota periods."
    )
    compensation: list[PayIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="Pay periods."
    )
    history: list[RepChangeIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="Manager and team changes."
    )
    deals: list[OwnedDealIn] = Field(
        default_factory=list, max_length=MAX_REP_DEALS, description="Deals the rep owns now."
    )
    deal_history: list[DealChangeIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="Changes of those deals."
    )
    activities: list[RepActivityIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="The rep's activities."
    )
    emails: list[RepEmailIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="Emails on the rep's deals."
    )

    @model_validator(mode="after")
    def _rows_refer_to_posted_deals(self) -> RepIn:
        ids = [d.deal_id for d in self.deals]
        if len(set(ids)) != len(ids):
            raise PydanticCustomError("duplicate_deal", "deals: each deal_id at most once")
        for i, deal in enumerate(self.deals):
            if deal.rep_id not in (None, self.rep_id):
                raise PydanticCustomError(
                    "deal_owner", f"deals.{i}.rep_id: a posted rep's deals are its own"
                )
        posted = set(ids)
        for name in ("deal_history", "emails"):
            for i, row in enumerate(getattr(self, name)):
                if row.deal_id is not None and row.deal_id not in posted:
                    raise PydanticCustomError(
                        "unknown_deal",
                        f"{name}.{i}.deal_id: not one of this rep's posted deals",
                    )
        return self


class RepQuery(BaseModel):
    """A rep as of a moment: a rep of the service's data source by ``rep_id``, or ``rep``
    posted with its records."""

    model_config = _FORBID

    rep_id: Id | None = Field(default=None, description="A rep of the service's data source.")
    rep: RepIn | None = Field(default=None, description="Or this rep, posted with its records.")
    as_of: Moment | None = Field(default=None, description="As of this moment (UTC); default now.")

    @model_validator(mode="after")
    def _one_rep(self) -> RepQuery:
        if (self.rep_id is None) == (self.rep is None):
            raise PydanticCustomError(
                "rep_or_rep_id",
                "send exactly one of rep_id (a rep the service knows) and rep (a posted rep)",
            )
        return self

    @property
    def id(self) -> str:
        """The rep's id, known or posted."""
        return self.rep.rep_id if self.rep is not None else self.rep_id  # type: ignore[return-value]

    def moment(self) -> datetime:
        """``as_of``, default now (naive UTC)."""
        return self.as_of or datetime.now(UTC).replace(tzinfo=None)


class RepList(ItemList):
    """Reps, each by id or posted; at most :data:`MAX_POSTED_REPS` posted."""

    items_field: ClassVar[str] = "reps"
    reps: list[RepQuery] = _items("reps", "The reps, at most 256 (at most 16 posted).")

    @model_validator(mode="before")
    @classmethod
    def _count_posted(cls, data: Any) -> Any:
        items = data.get("reps") if isinstance(data, dict) else None
        if isinstance(items, list):
            posted = sum(isinstance(item, dict) and item.get("rep") is not None for item in items)
            if posted > MAX_POSTED_REPS:
                raise TooManyItems(
                    f"reps: at most {MAX_POSTED_REPS} posted reps (rep) per request, got "
                    f"{posted}; send reps the service knows by rep_id, or split the list"
                )
        return data


class RepRiskList(RepList):
    """Reps whose risk to score."""


class RepCoachingList(RepList):
    """Reps to coach on quota."""
