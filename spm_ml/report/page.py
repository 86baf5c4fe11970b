"""What one manager's page says, as plain data: the team's forecast, reps at quota risk,
top performers at attrition risk, deals at risk and the models behind them, all read from
one batch run (:class:`~spm_ml.report.outputs.BatchOutputs`).

Choices the page makes (and states on the page):

- **reps at quota risk**: every rep of the manager scored for the open period, by P(miss)
  descending, the warned ones marked;
- **deals at risk**: the manager's reps' open deals whose win probability fell over the
  last :data:`LOOKBACK_DAYS` days by at least :data:`MIN_FALL_PP` points, ranked by the
  money the fall puts at stake (amount x fall), the first :data:`MAX_DEALS`;
- **back-test**: the team's last periods replayed by ``spm-ml backtest`` at the point of
  the period nearest today's, as the batch recorded them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spm_ml.batch.deal_chunks import LOOKBACK_DAYS
from spm_ml.report.outputs import BatchOutputs, ReportError

MIN_FALL_PP = 1.0
MAX_DEALS = 10
SHOWN_MANAGERS = 8
"""Valid manager ids listed in the error for an unknown one."""

FAMILY_TITLES = {
    "deal-win": "Deal win",
    "quota-risk": "Quota risk",
    "attrition": "Attrition",
}
HOW_TO_READ = {
    "deal-win": (
        "A win probability of 30% means that of deals given 30% in the held-out past, about "
        "3 in 10 were won within the label's horizon: it is a frequency, not a verdict on "
        "this deal."
    ),
    "quota-risk": (
        "P(miss) 70% means that of reps given 70% at the same point of past periods, about "
        "7 in 10 finished below quota: a warning to look, not a judgement of the rep."
    ),
    "attrition": (
        "An attrition probability of 20% means that of top performers given 20% in the past, "
        "about 1 in 5 left voluntarily within the horizon: most people flagged stay."
    ),
}
ATTRITION_UNKNOWNS = (
    "The model reads pay, attainment, quota changes, tenure and activity from the CRM and "
    "payroll tables only. It cannot know about outside offers, a rep's personal "
    "circumstances, how they get on with their manager or team, or what was said in "
    "one-to-ones; a low score is not an all-clear and a high one is a reason to talk, never "
    "a decision about the person."
)


@dataclass
class ManagerPage:
    """Everything the template shows (numbers as numbers; the template formats them)."""

    manager_id: str
    as_of: pd.Timestamp
    generated_at: pd.Timestamp
    teams: list[str]
    forecast: list[dict]
    period: dict | None
    forecast_note: str
    backtest_line: str
    reps_at_risk: list[dict]
    quota_note: str
    attrition: list[dict]
    attrition_note: str
    attrition_unknowns: str
    deals: list[dict]
    deals_rule: str
    models: list[dict]
    batch: dict = field(default_factory=dict)


def manager_page(outputs: BatchOutputs, manager_id: str) -> ManagerPage:
    """The page of ``manager_id``; :class:`ReportError` listing valid ids when the run has
    no rep of that manager."""
    managers = outputs.managers()
    if manager_id not in managers:
        shown = ", ".join(managers[:SHOWN_MANAGERS]) or "none"
        more = (
            f" (and {len(managers) - SHOWN_MANAGERS} more)"
            if len(managers) > SHOWN_MANAGERS
            else ""
        )
        raise ReportError(
            f"manager {manager_id!r} has no reps in the batch run of {outputs.folder} "
            f"(as of {outputs.as_of:%Y-%m-%d}); managers there: {shown}{more}"
        )
    reps = outputs.reps[outputs.reps["manager_id"].astype(str) == manager_id]
    rep_ids = set(reps["rep_id"].astype(str))
    forecast = outputs.forecast
    rep_rows = forecast[(forecast["level"] == "rep") & forecast["id"].astype(str).isin(rep_ids)]
    teams = sorted(rep_rows["team"].dropna().astype(str).unique())
    manifest = outputs.manifest
    deals = outputs.deals[outputs.deals["rep_id"].astype(str).isin(rep_ids)]
    names = dict(zip(reps["rep_id"].astype(str), reps["rep_name"].astype(str), strict=True))
    return ManagerPage(
        manager_id=manager_id,
        as_of=outputs.as_of,
        generated_at=pd.Timestamp.now(tz="UTC").floor("s"),
        teams=teams,
        forecast=team_forecasts(forecast, teams),
        period=manifest.get("forecast_period"),
        forecast_note=str(manifest.get("forecast", "")),
        backtest_line=backtest_line(manifest.get("backtest") or {}, teams),
        reps_at_risk=reps_at_risk(reps, deals),
        quota_note=_quota_note(reps, manifest),
        attrition=attrition_rows(reps),
        attrition_note=_attrition_note(reps, manifest),
        attrition_unknowns=ATTRITION_UNKNOWNS,
        deals=deals_at_risk(deals, names),
        deals_rule=(
            f"Open deals of your reps whose win probability fell by {MIN_FALL_PP:.0f} point or "
            f"more over the last {LOOKBACK_DAYS} days, ranked by the money the fall puts at "
            f"stake (amount x fall); the first {MAX_DEALS}. Deals created in those "
            f"{LOOKBACK_DAYS} days have no earlier score and are not listed."
        ),
        models=model_cards(manifest),
        batch={
            "folder": str(outputs.folder),
            "finished_at": manifest.get("finished_at"),
            "fingerprint": manifest.get("fingerprint"),
        },
    )


def team_forecasts(forecast: pd.DataFrame, teams: list[str]) -> list[dict]:
    """The forecast rows of the manager's teams (P10/P50/P90, split, quota)."""
    rows = forecast[(forecast["level"] == "team") & forecast["id"].astype(str).isin(teams)]
    return [_plain(r) for r in rows.sort_values("id").to_dict("records")]


def backtest_line(record: dict, teams: list[str]) -> str:
    """One line per team: "last 6 periods: 5 of 6 actuals inside the 80% range"."""
    if "missing" in record:
        return f"Back-test: none on record ({record['missing']})."
    lines = []
    for team in teams:
        periods = record.get("team", {}).get(team, [])
        if not periods:
            lines.append(f"{team}: no replayed period on record.")
            continue
        inside = sum(p["inside"] for p in periods)
        lines.append(
            f"{team}, last {len(periods)} periods: {inside} of {len(periods)} actuals inside "
            f"the 80% range (replayed at {record['fraction']:.0%} elapsed)."
        )
    return " ".join(lines)


def reps_at_risk(reps: pd.DataFrame, deals: pd.DataFrame) -> list[dict]:
    """Scored reps by P(miss), drivers and coaching decoded."""
    scored = reps[reps["quota_status"] == "scored"].sort_values(
        ["p_miss", "rep_id"], ascending=[False, True]
    )
    out = []
    for row in scored.to_dict("records"):
        coaching = json.loads(row["coaching_json"]) if row.get("coaching_json") else {}
        row = _plain(row)
        row["drivers"] = json.loads(row["quota_drivers"] or "[]")
        row["gap"] = (coaching.get("pipeline_gap") or {}).get("sentence")
        out.append(row)
    return out


def attrition_rows(reps: pd.DataFrame) -> list[dict]:
    """Top performers scored for attrition, most at risk first."""
    scored = reps[reps["attrition_status"] == "scored"].sort_values(
        ["attrition_probability", "rep_id"], ascending=[False, True]
    )
    out = []
    for row in scored.to_dict("records"):
        row = _plain(row)
        row["drivers"] = json.loads(row["attrition_drivers"] or "[]")
        out.append(row)
    return out


def deals_at_risk(deals: pd.DataFrame, names: dict[str, str]) -> list[dict]:
    """The deals whose win probability fell most in money terms (module docstring)."""
    fall = (deals["probability_before"] - deals["probability"]) * 100.0
    risky = deals.assign(fall_pp=fall, at_stake=fall / 100.0 * deals["amount"])
    risky = risky[risky["fall_pp"] >= MIN_FALL_PP]
    risky = risky.sort_values(["at_stake", "deal_id"], ascending=[False, True]).head(MAX_DEALS)
    out = []
    for row in risky.to_dict("records"):
        row = _plain(row)
        drivers = json.loads(row["drivers_json"] or "[]")
        row["lowering"] = [d["text"] for d in drivers if d.get("direction") == "lowers"]
        row["rep_name"] = names.get(str(row["rep_id"]), row["rep_id"])
        row["tone"] = tone_words(row)
        row["pushes"] = push_words(row)
        out.append(row)
    return out


def tone_words(row: dict) -> str:
    """The buyer's email tone in words: trend over the last 14 days and the latest email."""
    trend, latest = _tone(row.get("inbound_tone_trend")), _tone(row.get("latest_inbound_tone"))
    negative = row.get("inbound_negative_share_14d")
    parts = []
    if trend is not None:
        direction = "cooling" if trend < -0.05 else "warming" if trend > 0.05 else "steady"
        parts.append(f"{direction} ({trend:+.2f} tone, last 14 days against the 30 before)")
    if negative is not None and negative > 0:
        parts.append(f"{negative:.0%} of the last 14 days' buyer emails negative")
    if latest is not None:
        parts.append(f"latest buyer email {latest:+.2f} (from -1 negative to +1 positive)")
    return "; ".join(parts) or "no buyer email tone on record"


def _tone(value: float | None) -> float | None:
    """Rounded to the two digits shown, without a "-0.00"."""
    return None if value is None else round(value, 2) + 0.0


def push_words(row: dict) -> str:
    pushes, days = row.get("close_date_pushes"), row.get("close_date_push_days")
    if pushes is None:
        return "close-date pushes not on record"
    if not pushes:
        return "close date never pushed"
    times = "once" if pushes == 1 else f"{int(pushes)} times"
    return f"close date pushed {times}, {int(days or 0)} days in all"


def model_cards(manifest: dict) -> list[dict]:
    """Per family: version, training date, held-out figures, reliability bins, or why
    there is no model."""
    facts = manifest.get("model_facts") or {}
    cards = []
    for family, described in (manifest.get("models") or {}).items():
        card = {
            "family": family,
            "title": FAMILY_TITLES.get(family, family),
            "how_to_read": HOW_TO_READ.get(family, ""),
            "missing": described.get("missing"),
            "version": described.get("version"),
        }
        card |= facts.get(family, {})
        cards.append(card)
    return cards


def _quota_note(reps: pd.DataFrame, manifest: dict) -> str:
    if (reps["quota_status"] == "scored").any():
        return ""
    statuses = sorted(reps["quota_status"].dropna().unique())
    return "No rep of yours was scored for quota risk: " + "; ".join(statuses) + "."


def _attrition_note(reps: pd.DataFrame, manifest: dict) -> str:
    missing = (manifest.get("models") or {}).get("attrition", {}).get("missing")
    if missing:
        return f"Attrition risk is not shown: {missing}"
    if not (reps["attrition_status"] == "scored").any():
        return "None of your reps is a top performer this period, so none is scored."
    return ""


def _plain(row: dict) -> dict:
    """Missing values as ``None`` (NaN, NaT, pd.NA), numpy scalars as Python values."""
    out = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        missing = value is None or value is pd.NA or value is pd.NaT
        out[key] = None if missing or (isinstance(value, float) and math.isnan(value)) else value
    return out
