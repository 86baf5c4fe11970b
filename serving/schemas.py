"""Request and response bodies of the HTTP API, validated at the boundary by pydantic."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spm_ml.data.schema import ACTIVITY_TYPES, DEAL_STAGES, OPEN_STAGES

Stage = Literal[DEAL_STAGES]  # type: ignore[valid-type]
ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]


class DealIn(BaseModel):
    """An open deal as the CRM shows it now; extra fields are custom CRM fields."""

    model_config = ConfigDict(extra="allow")

    deal_id: str = Field(min_length=1)
    rep_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    product: str = Field(min_length=1)
    amount: float = Field(ge=0)
    created_at: datetime
    expected_close_at: datetime
    stage: Stage = "prospecting"


class HistoryIn(BaseModel):
    changed_at: datetime
    field: Literal["stage", "amount", "expected_close_at"]
    old_value: str | None = None
    new_value: str


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: ActivityType
    occurred_at: datetime
    duration_min: float | None = Field(default=None, ge=0)


class EmailIn(BaseModel):
    """Email metadata only: bodies are not needed to score a deal and are never accepted."""

    model_config = ConfigDict(extra="allow")

    direction: Literal["inbound", "outbound"]
    sent_at: datetime


class DealScoreRequest(BaseModel):
    """One deal to score, as of a moment (default: now), with whatever history is known."""

    deal: DealIn
    as_of: datetime | None = None
    history: list[HistoryIn] = Field(default_factory=list)
    activities: list[ActivityIn] = Field(default_factory=list)
    emails: list[EmailIn] = Field(default_factory=list)
    top_k: int = Field(default=3, ge=0, le=20)


class Driver(BaseModel):
    feature: str
    value: Any = None
    shap: float
    direction: Literal["raises", "lowers"]


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class DealScore(BaseModel):
    deal_id: str
    as_of: datetime
    probability: float = Field(ge=0, le=1)
    drivers: list[Driver]
    model: ModelRef


OPEN_STAGE_NAMES = OPEN_STAGES
