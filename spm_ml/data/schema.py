"""The data contract: the eight tables every spm-ml pipeline reads.

The contract is data, not code: each table is a :class:`TableSchema` listing its required
columns, their kinds, enums, the primary key and the foreign keys.  Loading, validation,
the simulator and the adapters all read these definitions, so a column is declared once.

Required columns are a minimum.  Extra columns are allowed and kept as they are: custom CRM
fields become model features later.  ``docs/data-contract.md`` is the human-readable copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["id", "string", "datetime", "float", "int", "enum"]


@dataclass(frozen=True)
class Column:
    """One required column of a contract table.

    ``kind`` decides how a raw value is parsed: ``id`` and ``string`` stay text, ``datetime``
    is parsed to a naive UTC timestamp, ``float``/``int`` must be numeric, ``enum`` must be one
    of ``values``.  ``nullable`` columns may be empty; all others must hold a value in every row.
    """

    name: str
    kind: ColumnKind
    nullable: bool = False
    values: tuple[str, ...] = ()
    non_negative: bool = False
    doc: str = ""


@dataclass(frozen=True)
class ForeignKey:
    """``column`` of this table must exist in ``ref_table.ref_column`` (nulls are allowed)."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True)
class TableSchema:
    """A contract table: its required columns, key, references and event-time column."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    event_time: str | None = None
    """Column that dates each row; features computed as of ``t`` only see rows before ``t``."""
    doc: str = ""
    date_order: tuple[tuple[str, str], ...] = field(default=())
    """Pairs ``(earlier, later)`` that must hold when both are present."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


DEAL_STAGES = (
    "prospecting",
    "qualification",
    "discovery",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
"""Ordered CRM stages; the last two are terminal.  Adapters map their own stage names here."""

OPEN_STAGES = DEAL_STAGES[:5]

ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "task")

REPS = TableSchema(
    name="reps",
    doc="Sales reps and their managers; managers are reps too (role='manager').",
    columns=(
        Column("rep_id", "id"),
        Column("manager_id", "id", nullable=True, doc="rep_id of the manager; null at the top"),
        Column("team", "string"),
        Column("region", "string"),
        Column("role", "string", doc="free text, e.g. AE, SDR, manager"),
        Column("hire_date", "datetime"),
        Column("exit_date", "datetime", nullable=True),
        Column("exit_reason", "enum", nullable=True, values=("voluntary", "involuntary")),
    ),
    primary_key=("rep_id",),
    foreign_keys=(ForeignKey("manager_id", "reps", "rep_id"),),
    event_time="hire_date",
    date_order=(("hire_date", "exit_date"),),
)

ACCOUNTS = TableSchema(
    name="accounts",
    doc="Customer accounts.",
    columns=(
        Column("account_id", "id"),
        Column("industry", "string"),
        Column("employees", "int", nullable=True, non_negative=True),
        Column("annual_revenue", "float", nullable=True, non_negative=True),
        Column("region", "string"),
    ),
    primary_key=("account_id",),
)

DEALS = TableSchema(
    name="deals",
    doc=(
        "Opportunities.  `stage` and `outcome` hold the state at the data's as-of time; the "
        "path to it is in deal_history, which is what as-of features read."
    ),
    columns=(
        Column("deal_id", "id"),
        Column("rep_id", "id"),
        Column("account_id", "id"),
        Column("product", "string"),
        Column("amount", "float", non_negative=True),
        Column("created_at", "datetime"),
        Column("expected_close_at", "datetime"),
        Column("closed_at", "datetime", nullable=True),
        Column("stage", "enum", values=DEAL_STAGES),
        Column("outcome", "enum", nullable=True, values=("won", "lost")),
    ),
    primary_key=("deal_id",),
    foreign_keys=(
        ForeignKey("rep_id", "reps", "rep_id"),
        ForeignKey("account_id", "accounts", "account_id"),
    ),
    event_time="created_at",
    date_order=(("created_at", "closed_at"),),
)

DEAL_HISTORY = TableSchema(
    name="deal_history",
    doc="Every change of a deal's stage, amount or expected close date, with its time.",
    columns=(
        Column("deal_id", "id"),
        Column("changed_at", "datetime"),
        Column("field", "enum", values=("stage", "amount", "expected_close_at")),
        Column("old_value", "string", nullable=True),
        Column("new_value", "string"),
    ),
    primary_key=(),
    foreign_keys=(ForeignKey("deal_id", "deals", "deal_id"),),
    event_time="changed_at",
)

ACTIVITIES = TableSchema(
    name="activities",
    doc="Logged sales activities; deal_id is null for account-level work.",
    columns=(
        Column("activity_id", "id"),
        Column("rep_id", "id"),
        Column("deal_id", "id", nullable=True),
        Column("account_id", "id"),
        Column("type", "enum", values=ACTIVITY_TYPES),
        Column("occurred_at", "datetime"),
        Column("duration_min", "float", nullable=True, non_negative=True),
    ),
    primary_key=("activity_id",),
    foreign_keys=(
        ForeignKey("rep_id", "reps", "rep_id"),
        ForeignKey("deal_id", "deals", "deal_id"),
        ForeignKey("account_id", "accounts", "account_id"),
    ),
    event_time="occurred_at",
)

EMAILS = TableSchema(
    name="emails",
    doc="Sales emails.  Bodies are customer data: never logged, never stored as artifacts.",
    columns=(
        Column("email_id", "id"),
        Column("deal_id", "id"),
        Column("rep_id", "id"),
        Column("direction", "enum", values=("inbound", "outbound")),
        Column("sent_at", "datetime"),
        Column("subject", "string", nullable=True),
        Column("body", "string", nullable=True),
    ),
    primary_key=("email_id",),
    foreign_keys=(
        ForeignKey("deal_id", "deals", "deal_id"),
        ForeignKey("rep_id", "reps", "rep_id"),
    ),
    event_time="sent_at",
)

QUOTAS = TableSchema(
    name="quotas",
    doc="Quota per rep and period (quarters in the simulator, any period in real data).",
    columns=(
        Column("rep_id", "id"),
        Column("period_start", "datetime"),
        Column("period_end", "datetime"),
        Column("quota_amount", "float", non_negative=True),
    ),
    primary_key=("rep_id", "period_start"),
    foreign_keys=(ForeignKey("rep_id", "reps", "rep_id"),),
    event_time="period_start",
    date_order=(("period_start", "period_end"),),
)

COMPENSATION = TableSchema(
    name="compensation",
    doc="Pay per rep and period; paid_incentive is known only after period_end.",
    columns=(
        Column("rep_id", "id"),
        Column("period_start", "datetime"),
        Column("period_end", "datetime"),
        Column("base_pay", "float", non_negative=True),
        Column("target_incentive", "float", non_negative=True),
        Column("paid_incentive", "float", nullable=True, non_negative=True),
    ),
    primary_key=("rep_id", "period_start"),
    foreign_keys=(ForeignKey("rep_id", "reps", "rep_id"),),
    event_time="period_end",
    date_order=(("period_start", "period_end"),),
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (REPS, ACCOUNTS, DEALS, DEAL_HISTORY, ACTIVITIES, EMAILS, QUOTAS, COMPENSATION)
}
"""All contract tables by name, in load order (referenced tables first)."""

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
