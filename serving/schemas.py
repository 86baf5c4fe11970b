"""Request and response bodies of the HTTP API, validated at the boundary by pydantic.

Everything a client can send is bounded here, so that no request reaches the feature code
with a value it cannot handle (which used to surface as HTTP 500) and no request can make
the service hold more than a few megabytes:

* ids and short values: 1-128 printable characters (no control characters);
* datetimes: 1970-01-01 <= t < 2200-01-01 (pandas' nanosecond range is 1677-2262); an
  offset is converted to UTC, a value without one is read as UTC; the service keeps naive
  UTC datetimes, like every table in spm-ml;
* amounts: finite, 0 <= amount <= 1e12; event lists: at most 10,000 items each;
* email text (``subject``, ``body``): at most 100,000 characters each, never part of a log
  line or of an error message (``repr=False``; errors carry the field path only);
* unknown fields are refused everywhere except on the posted deal, whose extra fields are
  custom CRM fields: at most 50, named in at most 64 characters, scalar values.

Every rule that spans fields (dates in order, a history value that parses for its field,
the three email scores together) is a pydantic error with the field in its location, so a
rejected request answers HTTP 400 (BentoML's status for a pydantic validation error) naming
the field.

Every endpoint takes a list (``deals``, ``reps``, ``emails``) so callers batch: at most
:data:`MAX_ITEMS` items; a longer list answers 413 (:class:`TooManyItems`) before any item
is read.  Each answer item carries its own ``status`` (200, or the 4xx its item earned, with
``error`` naming the field) and the ``models`` (name, version) that produced it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, ClassVar, Literal

from bentoml.exceptions import BentoMLException
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES, OPEN_STAGES

MAX_ITEMS = 256
"""Items per request (deals, reps, emails); a longer list answers 413."""
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 100_000
MAX_EVENTS = 10_000
MAX_AMOUNT = 1e12
MAX_DURATION_MIN = 43_200.0  # 30 days: longer is a data-entry error, not an activity
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_NAME_CHARS = 64
MAX_CUSTOM_VALUE_CHARS = 1_000
SCORE_SUM_TOLERANCE = 1e-3
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2200, 1, 1)
"""Supported datetimes, naive UTC, ``EARLIEST <= t < LATEST``."""

RESERVED_DEAL_FIELDS = ("closed_at", "outcome")
"""Deal columns a client must not set: a deal to score is open, its outcome unknown."""

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=_PRINTABLE),
]
"""An identifier or short name: 1-128 characters, no control characters."""

Stage = Literal[DEAL_STAGES]  # type: ignore[valid-type]
OpenStage = Literal[OPEN_STAGES]  # type: ignore[valid-type]
ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
HistoryField = Literal["stage", "amount", "expected_close_at", "rep_id"]


def _supported_moment(value: datetime) -> datetime:
    """Naive UTC inside ``[EARLIEST, LATEST)``, or a ``datetime_range`` error."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 or 9999 with an offset: far out of range anyway
            value = value.replace(tzinfo=None)
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError(
            "datetime_range", "must be on or after 1970-01-01 and before 2200-01-01 (UTC)"
        )
    return value


YEAR_PATTERN = r"^(19[7-9][0-9]|2[01][0-9][0-9])-"
"""Years 1970-2199, in the OpenAPI document (a ``date-time`` has no minimum there)."""

Moment = Annotated[
    datetime,
    AfterValidator(_supported_moment),
    Field(json_schema_extra={"pattern": YEAR_PATTERN}),
]
"""A datetime in the supported range, as naive UTC (offsets converted, none read as UTC)."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
CustomValue = (
    Annotated[str, StringConstraints(max_length=MAX_CUSTOM_VALUE_CHARS)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
"""A custom CRM field's value: short text, a finite number, a flag or null."""

_FORBID = ConfigDict(extra="forbid")


def _date_order(earlier: str, later: str) -> PydanticCustomError:
    return PydanticCustomError("date_order", f"{later} must not be before {earlier}")


class DealIn(BaseModel):
    """An open deal as the CRM shows it now; extra fields are its custom CRM fields."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"maxProperties": 8 + MAX_CUSTOM_FIELDS},
    )
    __pydantic_extra__: dict[str, CustomValue] = Field(init=False)  # type: ignore[assignment]

    deal_id: Id = Field(description="The deal's id; the response carries it back.")
    rep_id: Id = Field(description="The rep who owns the deal now.")
    account_id: Id = Field(description="The customer account.")
    product: Id = Field(description="The product sold, as named in the CRM.")
    amount: Amount = Field(description="Deal value now, in the organisation's currency.")
    created_at: Moment = Field(description="When the deal was created (UTC).")
    expected_close_at: Moment = Field(description="Expected close date now; not before created_at.")
    stage: OpenStage = Field(
        default="prospecting",
        description="Current stage; closed deals (closed_won, closed_lost) are not scored.",
    )

    @field_validator("stage", mode="before")
    @classmethod
    def _open(cls, value: Any) -> Any:
        if value in ("closed_won", "closed_lost"):
            raise PydanticCustomError(
                "closed_stage", "only open deals are scored; this deal is closed"
            )
        return value

    @field_validator("expected_close_at")
    @classmethod
    def _closes_after_creation(cls, value: datetime, info: ValidationInfo) -> datetime:
        created = info.data.get("created_at")
        if created is not None and value < created:
            raise _date_order("created_at", "expected_close_at")
        return value

    @model_validator(mode="after")
    def _custom_fields_bounded(self) -> DealIn:
        extra = self.model_extra or {}
        if len(extra) > MAX_CUSTOM_FIELDS:
            raise PydanticCustomError(
                "too_many_custom_fields",
                f"at most {MAX_CUSTOM_FIELDS} custom fields per deal",
            )
        for name in extra:
            if name in RESERVED_DEAL_FIELDS:
                raise PydanticCustomError(
                    "reserved_field",
                    f"{name} is not accepted: a deal to score is open and its outcome unknown",
                )
            if len(name) > MAX_CUSTOM_NAME_CHARS or not name.isprintable():
                raise PydanticCustomError(
                    "custom_field_name",
                    f"custom field names are 1-{MAX_CUSTOM_NAME_CHARS} printable characters",
                )
        return self


class HistoryIn(BaseModel):
    """One change of a deal attribute, as the CRM's field history records it."""

    model_config = _FORBID

    changed_at: Moment = Field(description="When the change happened (UTC).")
    field: HistoryField = Field(
        description="What changed: stage, amount, expected_close_at or rep_id (owner)."
    )
    old_value: Id | None = Field(
        default=None, description="Value before the change, in the format of new_value."
    )
    new_value: Id = Field(
        description=(
            "Value after the change: a stage name, a number, an ISO date, or a rep id. "
            "Numbers and dates are normalised (amounts as decimals, dates as YYYY-MM-DD)."
        )
    )

    @field_validator("old_value", "new_value")
    @classmethod
    def _parses_for_its_field(cls, value: str | None, info: ValidationInfo) -> str | None:
        field = info.data.get("field")
        if value is None or field is None:
            return value
        return parse_history_value(field, value)


def parse_history_value(field: str, value: str) -> str:
    """``value`` in the canonical text form the feature code parses for ``field``.

    Raises a ``history_value`` error when it does not parse: pandas would otherwise fail on
    it deep inside the features (HTTP 500), or silently read it as missing.
    """
    if field == "stage":
        if value not in DEAL_STAGES:
            raise PydanticCustomError(
                "history_value", f"a stage must be one of {', '.join(DEAL_STAGES)}"
            )
        return value
    if field == "amount":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 <= number <= MAX_AMOUNT):
            raise PydanticCustomError(
                "history_value", f"an amount must be a number from 0 to {MAX_AMOUNT:.0e}"
            )
        return repr(number)
    if field == "expected_close_at":
        try:
            moment = _supported_moment(datetime.fromisoformat(value))
        except ValueError:
            raise PydanticCustomError(
                "history_value",
                "an expected close date must be an ISO date (YYYY-MM-DD) from 1970 to 2199",
            ) from None
        # Dates only, like the CRM's history: mixed formats in one column break pandas.
        return moment.date().isoformat()
    return value  # rep_id: the Id constraints already hold


class ActivityIn(BaseModel):
    """A logged sales activity on the deal."""

    model_config = _FORBID

    type: ActivityType = Field(description="Kind of activity.")
    occurred_at: Moment = Field(description="When it happened (UTC).")
    contact_id: Id | None = Field(
        default=None, description="The buyer contact involved, if logged (contacts engaged)."
    )
    duration_min: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DURATION_MIN,
        allow_inf_nan=False,
        description="Duration in minutes, if logged.",
    )


class EmailIn(BaseModel):
    """An email on the deal: metadata, plus either its sentiment scores or its text.

    Send the three scores ``p_negative``, ``p_neutral``, ``p_positive`` (from
    ``spm-ml sentiment score``), or ``subject``/``body`` for the service to score and drop at
    once, or neither (the email then counts, without a tone).  Text is customer data: it is
    never logged, stored or echoed in an error.
    """

    model_config = _FORBID

    direction: Literal["inbound", "outbound"] = Field(description="Who sent it.")
    sent_at: Moment = Field(description="When it was sent (UTC).")
    contact_id: Id | None = Field(
        default=None, description="The buyer contact who sent or received it, if known."
    )
    p_negative: Probability | None = Field(default=None, description="Negative tone, 0-1.")
    p_neutral: Probability | None = Field(default=None, description="Neutral tone, 0-1.")
    p_positive: Probability | None = Field(
        default=None, description="Positive tone, 0-1; the three scores sum to 1."
    )
    subject: Text | None = Field(
        default=None, repr=False, description="Subject line (scored, then dropped)."
    )
    body: Text | None = Field(
        default=None, repr=False, description="Body text (scored, then dropped)."
    )

    @model_validator(mode="after")
    def _scores_or_text(self) -> EmailIn:
        scores = [self.p_negative, self.p_neutral, self.p_positive]
        given = [s is not None for s in scores]
        if any(given) and not all(given):
            raise PydanticCustomError(
                "email_scores", "send all three of p_negative, p_neutral, p_positive, or none"
            )
        if all(given) and abs(sum(scores) - 1.0) > SCORE_SUM_TOLERANCE:  # type: ignore[arg-type]
            raise PydanticCustomError(
                "email_scores",
                f"p_negative + p_neutral + p_positive must be 1 (within {SCORE_SUM_TOLERANCE})",
            )
        if all(given) and self.has_text:
            raise PydanticCustomError(
                "email_scores_and_text",
                "send either the scores (p_negative, p_neutral, p_positive) or the text "
                "(subject, body), not both",
            )
        return self

    @property
    def has_text(self) -> bool:
        """Whether the client sent text for the service to score."""
        return self.subject is not None or self.body is not None

    def as_row(self) -> dict[str, Any]:
        """The email as an ``emails`` table row: metadata and scores, never text."""
        return self.model_dump(exclude={"subject", "body"}, exclude_none=True)


class DealScoreRequest(BaseModel):
    """One deal to score as of a moment: a deal the service knows, by id, or a posted deal.

    Send exactly one of ``deal_id`` (a deal in the service's data source) and ``deal`` (a
    deal described in the request, with its ``history``, ``activities`` and ``emails``).
    """

    model_config = _FORBID

    deal_id: Id | None = Field(
        default=None, description="Score this deal of the service's data source."
    )
    deal: DealIn | None = Field(
        default=None, description="Or score this deal, described with its events."
    )
    as_of: Moment | None = Field(
        default=None,
        validate_default=True,
        description="Score the deal as of this moment (UTC); default now. Not before "
        "the deal's created_at.",
    )
    history: list[HistoryIn] = Field(
        default_factory=list,
        max_length=MAX_EVENTS,
        description="Changes of the posted deal's stage, amount, close date and owner.",
    )
    activities: list[ActivityIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="The posted deal's activities."
    )
    emails: list[EmailIn] = Field(
        default_factory=list, max_length=MAX_EVENTS, description="The posted deal's emails."
    )
    top_k: int = Field(default=3, ge=0, le=20, description="How many drivers to explain.")

    @field_validator("as_of")
    @classmethod
    def _not_before_creation(cls, value: datetime | None, info: ValidationInfo) -> datetime:
        moment = value if value is not None else datetime.now(UTC).replace(tzinfo=None)
        deal = info.data.get("deal")
        if deal is not None and moment < deal.created_at:
            raise _date_order("deal.created_at", "as_of")
        return moment

    @model_validator(mode="after")
    def _one_deal(self) -> DealScoreRequest:
        if (self.deal_id is None) == (self.deal is None):
            raise PydanticCustomError(
                "deal_or_deal_id",
                "send exactly one of deal_id (a deal the service knows) and deal (a posted deal)",
            )
        if self.deal_id is not None and (self.history or self.activities or self.emails):
            raise PydanticCustomError(
                "events_without_deal",
                "history, activities and emails come with a posted deal, not with deal_id",
            )
        return self


class TooManyItems(BentoMLException):
    """A list longer than :data:`MAX_ITEMS`: HTTP 413, raised before any item is read."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def _items(field: str, description: str):
    """A request's list of items: at least one, at most :data:`MAX_ITEMS` (documented as
    ``maxItems``; checked by :func:`_count_items` so that a longer list is 413, not 400)."""
    return Field(min_length=1, description=description, json_schema_extra={"maxItems": MAX_ITEMS})


class ItemList(BaseModel):
    """A request carrying one list of items (:attr:`items_field`), counted before reading."""

    model_config = _FORBID
    items_field: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _count_items(cls, data: Any) -> Any:
        items = data.get(cls.items_field) if isinstance(data, dict) else None
        if isinstance(items, list) and len(items) > MAX_ITEMS:
            # not a ValueError: pydantic lets it through, BentoML answers its status (413)
            raise TooManyItems(
                f"{cls.items_field}: at most {MAX_ITEMS} items per request, got {len(items)}; "
                "split the list over several requests"
            )
        return data


class DealScoreList(ItemList):
    """Deals to score, each by id or posted (see :class:`DealScoreRequest`)."""

    items_field: ClassVar[str] = "deals"
    deals: list[DealScoreRequest] = _items("deals", "The deals, at most 256.")


class Driver(BaseModel):
    """One feature behind the score and how much it moved it (SHAP, log-odds)."""

    feature: str = Field(description="Feature name, as in the model card.")
    value: Any = Field(default=None, description="The feature's value for this deal.")
    shap: float = Field(description="Contribution to the log-odds of a win.")
    direction: Literal["raises", "lowers"] = Field(description="Sign of the contribution.")


class ModelRef(BaseModel):
    """A registered model that produced (part of) an answer.

    Build it with :meth:`of`: answers leave out fields never set, and the alias is always
    part of a reference."""

    name: str = Field(description="Registered model name.")
    version: str = Field(
        description="Registered model version ('default' for the built-in sentiment model)."
    )
    alias: str = Field(default="champion", description="Alias it was loaded by (champion).")

    @classmethod
    def of(cls, name: str, version: str) -> ModelRef:
        return cls(name=name, version=version, alias="champion")


UtcMoment = Annotated[datetime, AfterValidator(_as_utc)]


class ItemResult(BaseModel):
    """What every answer item carries: its own status and, when refused, why."""

    status: int = Field(
        default=200,
        description="200 when the item was answered; else the 4xx it earned (404: unknown "
        "id, 422: not scorable as asked), with error naming the field.",
    )
    error: str | None = Field(default=None, description="Why the item was refused.")
    models: list[ModelRef] = Field(
        default_factory=list, description="The models (name, version) that produced the item."
    )


class DealScore(ItemResult):
    """A calibrated win probability and the drivers behind it (or why not)."""

    deal_id: str = Field(description="The scored deal.")
    as_of: UtcMoment = Field(description="The moment it was scored as of (UTC).")
    probability: float | None = Field(
        default=None, ge=0, le=1, description="Calibrated probability of a win."
    )
    drivers: list[Driver] | None = Field(
        default=None, description="Top drivers, largest |shap| first."
    )
    label: str | None = Field(
        default=None,
        description="What the probability is of, e.g. 'won within 180 days of as_of'.",
    )


class ResultList(BaseModel):
    """An answer: one result per item, in the order sent.

    The HTTP status is 200 when at least one item was answered; when every item was
    refused it is theirs (404 when all were unknown ids, else 422 or the items' common
    status), with ``error`` repeating the first item's reason.
    """

    error: str | None = Field(default=None, description="Set when every item was refused.")


class DealScores(ResultList):
    results: list[DealScore] = Field(description="One result per deal, in the order sent.")


class DealCoachingList(ItemList):
    """Deals to coach, each by id or posted (as for ``/v1/deals/score``)."""

    items_field: ClassVar[str] = "deals"
    deals: list[DealScoreRequest] = _items("deals", "The deals, at most 256.")
    max_recommendations: int = Field(
        default=3, ge=0, le=5, description="At most this many recommendations per deal."
    )


class WordedDriver(Driver):
    """A driver in plain words, and whether a rep can act on it."""

    words: str = Field(description="What the feature means, in plain words.")
    actionable: bool = Field(description="Whether a coaching lever changes it.")
    text: str = Field(description="One sentence: the feature, its value and its effect.")


class Recommendation(BaseModel):
    """A lever for the deal and what the model expects it to do."""

    lever: str = Field(description="The lever's name in the coaching catalogue.")
    sentence: str = Field(description="What to do, in a sentence.")
    probability: float = Field(description="The win probability with the lever applied.")
    uplift_pp: float = Field(description="Change of the win probability, percentage points.")


class DealCoachingResult(DealScore):
    """A deal's probability, drivers in words, and the levers that would raise it most."""

    drivers: list[WordedDriver] | None = Field(  # type: ignore[assignment]
        default=None, description="Top drivers in words, largest |shap| first."
    )
    recommendations: list[Recommendation] | None = Field(
        default=None, description="Levers the model expects to raise the probability, best first."
    )
    context: list[WordedDriver] | None = Field(
        default=None, description="Drivers no lever changes: explain, never advise."
    )
    note: str | None = Field(default=None, description="What an uplift is, and is not.")


class DealCoachings(ResultList):
    results: list[DealCoachingResult] = Field(description="One result per deal, in the order sent.")


FeatureValue = (
    Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)
"""A feature's value in a what-if: a finite number, a category's text, or null (missing)."""


FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CUSTOM_NAME_CHARS)]
MAX_FEATURES = 200
"""Feature values in one what-if row (the deal-win model reads a few dozen)."""


class WhatIfRequest(DealScoreRequest):
    """A deal and the feature values to change: the deal by id or posted (as for scoring),
    or given as its feature values (``features``: every feature the model reads)."""

    features: dict[FeatureName, FeatureValue] | None = Field(
        default=None,
        max_length=MAX_FEATURES,
        description="Or the deal as its feature values, every feature the model reads (a "
        "missing one is refused, 422, named); deal_id then only labels the answer.",
        json_schema_extra={"maxProperties": MAX_FEATURES},
    )
    changes: dict[FeatureName, FeatureValue] = Field(
        min_length=1,
        max_length=MAX_CUSTOM_FIELDS,
        description="Feature name -> new value, names as in the deal-win model card. A "
        "feature the model does not read is refused (422, named).",
        json_schema_extra={"maxProperties": MAX_CUSTOM_FIELDS},
    )

    @model_validator(mode="after")
    def _one_deal(self) -> WhatIfRequest:  # replaces DealScoreRequest's rule
        given = [self.deal_id is not None and self.features is None, self.deal is not None]
        given.append(self.features is not None)
        if sum(given) != 1 or (self.features is not None and self.deal is not None):
            raise PydanticCustomError(
                "deal_or_deal_id_or_features",
                "send exactly one of deal_id (a deal the service knows), deal (a posted "
                "deal) and features (its feature values, optionally labelled by deal_id)",
            )
        if self.deal is None and (self.history or self.activities or self.emails):
            raise PydanticCustomError(
                "events_without_deal",
                "history, activities and emails come with a posted deal",
            )
        return self

    @property
    def label(self) -> str:
        """The id the answer carries."""
        if self.deal is not None:
            return self.deal.deal_id
        return self.deal_id if self.deal_id is not None else "features"


class WhatIfList(ItemList):
    """What-ifs to score."""

    items_field: ClassVar[str] = "deals"
    deals: list[WhatIfRequest] = _items("deals", "The deals and their changes, at most 256.")


class WhatIfResult(ItemResult):
    """A deal's probability now and with the changes, and the changed row's drivers."""

    deal_id: str = Field(description="The deal.")
    as_of: UtcMoment = Field(description="The moment it was scored as of (UTC).")
    probability: float | None = Field(default=None, description="Win probability now.")
    changed_probability: float | None = Field(
        default=None, description="Win probability with the changes applied."
    )
    uplift_pp: float | None = Field(
        default=None, description="changed_probability - probability, in percentage points."
    )
    drivers: list[WordedDriver] | None = Field(
        default=None, description="Top drivers of the changed row, in words."
    )
    label: str | None = Field(default=None, description="What the probability is of.")


class WhatIfs(ResultList):
    results: list[WhatIfResult] = Field(description="One result per deal, in the order sent.")


class QuotaRisk(BaseModel):
    """P(the rep ends the open quota period below quota), from the quota-risk champion."""

    status: str = Field(description="'scored', or why not (no quota period open at as_of).")
    p_miss: float | None = Field(default=None, description="Probability of missing quota.")
    warned: bool | None = Field(default=None, description="p_miss at or above 0.5.")
    warning_since: UtcMoment | None = Field(
        default=None, description="The date the warning has held since (weekly scores)."
    )
    expected_attainment: float | None = Field(
        default=None, description="Expected attainment at period end (1 = quota)."
    )
    attainment_p10: float | None = Field(default=None, description="80% range, low end.")
    attainment_p90: float | None = Field(default=None, description="80% range, high end.")
    period_end: UtcMoment | None = Field(default=None, description="End of the quota period.")
    days_left: float | None = Field(default=None, description="Days left in the period.")
    estimator: str | None = Field(default=None, description="The estimator served.")
    drivers: list[str] = Field(default_factory=list, description="Drivers in plain words.")


class AttritionRisk(BaseModel):
    """P(the rep leaves voluntarily within the model's horizon), for top performers."""

    status: str = Field(description="'scored', or why not (not a top performer).")
    top_performer: bool | None = Field(default=None, description="In the top quarter.")
    probability: float | None = Field(default=None, description="Probability of leaving.")
    warned: bool | None = Field(default=None, description="Among the riskiest tenth of AEs.")
    warning_since: UtcMoment | None = Field(default=None, description="Warned since.")
    drivers: list[str] = Field(default_factory=list, description="Drivers in plain words.")


class RepRisk(ItemResult):
    """A rep's quota risk and, for callers allowed to see it, attrition risk."""

    rep_id: str = Field(description="The rep.")
    as_of: UtcMoment = Field(description="The moment it was scored as of (UTC).")
    rep_name: str | None = Field(default=None, description="The rep's name.")
    manager_id: str | None = Field(default=None, description="The rep's manager at as_of.")
    quota: QuotaRisk | None = Field(default=None, description="Quota risk.")
    attrition: AttritionRisk | None = Field(
        default=None,
        description="Attrition risk: only for admins and the rep's own manager (else absent, "
        "and withheld says why).",
    )
    withheld: str | None = Field(default=None, description="What was left out, and why.")


class RepRisks(ResultList):
    results: list[RepRisk] = Field(description="One result per rep, in the order sent.")


class PipelineGap(BaseModel):
    """The extra qualified pipeline (money) that lifts P(attain) to the target."""

    amount: float | None = Field(description="Money, two significant figures; null: out of reach.")
    deals: int | None = Field(description="Hypothetical deals of deal_size that make it.")
    p_attain_after: float | None = Field(description="P(attain) with them.")
    deal_size: float = Field(description="Size of each hypothetical deal.")
    win_probability: float = Field(description="Their win probability.")
    days_to_expected_close: float = Field(description="Their days to expected close.")
    size_basis: str = Field(description="rep (the rep's median open deal) or organisation.")
    rate_basis: str = Field(description="rep or organisation: where the rates come from.")
    sentence: str = Field(description="The gap in a sentence.")
    method: str = Field(description="How it was computed.")


class RescueDeal(BaseModel):
    """An open deal and what winning it inside the period does to P(attain)."""

    deal_id: str = Field(description="The deal.")
    amount: float = Field(description="Its amount.")
    stage: str = Field(description="Its stage.")
    win_probability: float = Field(description="Its win probability (deal-win champion).")
    p_attain_if_won: float = Field(description="P(attain) if it is won this period.")
    gain_pp: float = Field(description="The gain, percentage points.")
    sentence: str = Field(description="In a sentence.")


class ActivityAgainstBaseline(BaseModel):
    """Recent activity of one kind against the rep's own usual pace."""

    activity: str = Field(description="Kind of activity (all, meeting, call, demo, email).")
    last_30_days: float = Field(description="Activities in the 30 days before as_of.")
    usual_per_30_days: float | None = Field(description="The rep's usual pace per 30 days.")
    ratio: float | None = Field(description="last_30_days over the usual pace.")
    sentence: str = Field(description="In a sentence.")


class RepCoachingResult(ItemResult):
    """How likely a rep is to miss quota and why, the pipeline gap, the deals to rescue,
    activity against the rep's own baseline; attrition for admins and the rep's manager."""

    rep_id: str = Field(description="The rep.")
    as_of: UtcMoment = Field(description="The moment it was coached as of (UTC).")
    manager_id: str | None = Field(default=None, description="The manager at as_of.")
    quota_status: str | None = Field(
        default=None, description="'scored', or why the quota figures are empty."
    )
    period_start: str | None = Field(default=None, description="Start of the quota period.")
    period_end: str | None = Field(default=None, description="End of the quota period.")
    quota: float | None = Field(default=None, description="The period's quota.")
    days_left: float | None = Field(default=None, description="Days left in the period.")
    p_miss: float | None = Field(default=None, description="P(missing quota).")
    p_attain: float | None = Field(default=None, description="P(attaining quota).")
    estimator: str | None = Field(default=None, description="The estimator served.")
    drivers: list[str] | None = Field(default=None, description="Drivers in plain words.")
    expected_attainment: float | None = Field(default=None, description="Expected attainment.")
    attainment_p10: float | None = Field(default=None, description="80% range, low end.")
    attainment_p90: float | None = Field(default=None, description="80% range, high end.")
    pipeline_gap: PipelineGap | None = Field(default=None, description="The pipeline gap.")
    deals_to_rescue: list[RescueDeal] | None = Field(default=None, description="Deals to rescue.")
    activity_vs_baseline: list[ActivityAgainstBaseline] | None = Field(
        default=None, description="Activity against the rep's own baseline."
    )
    attrition: AttritionRisk | None = Field(
        default=None, description="Only for admins and the rep's own manager."
    )
    withheld: str | None = Field(default=None, description="What was left out, and why.")
    caveat: str | None = Field(default=None, description="Estimates, not promises.")


class RepCoachings(ResultList):
    results: list[RepCoachingResult] = Field(description="One result per rep, in the order sent.")


class EmailText(BaseModel):
    """An email's text to score: never logged, stored or echoed."""

    model_config = _FORBID

    subject: Text | None = Field(default=None, repr=False, description="Subject line.")
    body: Text = Field(repr=False, description="Body text (quoted replies are cleaned away).")


class EmailList(ItemList):
    """Emails whose tone to score."""

    items_field: ClassVar[str] = "emails"
    emails: list[EmailText] = _items("emails", "The emails, at most 256.")


class EmailSentiment(ItemResult):
    """Calibrated tone probabilities of one email, or an abstention."""

    label: Literal["negative", "neutral", "positive"] | None = Field(
        default=None, description="The most likely tone; absent when the model abstains."
    )
    p_negative: float | None = Field(default=None, description="Negative tone, 0-1.")
    p_neutral: float | None = Field(default=None, description="Neutral tone, 0-1.")
    p_positive: float | None = Field(default=None, description="Positive tone, 0-1.")
    abstained: bool = Field(
        description="True when the text gives nothing to judge (empty after cleaning, or "
        "not English): no probabilities, never a guess."
    )
    reason: str | None = Field(default=None, description="Why the model abstained.")


class EmailSentiments(ResultList):
    results: list[EmailSentiment] = Field(description="One result per email, in the order sent.")


class ReloadAnswer(BaseModel):
    """The champions served after a reload."""

    changed: list[str] = Field(description="Families whose served version changed.")
    models: list[ModelRef] = Field(description="Every model served now.")
    missing: dict[str, str] = Field(
        default_factory=dict, description="Families without a champion, and what to run."
    )


class ErrorDetail(BaseModel):
    """One problem with a request: where it is and what kind it is."""

    type: str = Field(description="Kind of problem, e.g. missing, string_too_long.")
    loc: list[str | int] = Field(description="Path to the field in the request body.")
    msg: str = Field(description="What is wrong and what is expected.")


class ErrorBody(BaseModel):
    """Body of every 4xx answer.  It never repeats a submitted value."""

    error: str = Field(description="What went wrong.")
    detail: list[ErrorDetail] | None = Field(
        default=None, description="For a rejected body: every problem found."
    )


OPEN_STAGE_NAMES = OPEN_STAGES
