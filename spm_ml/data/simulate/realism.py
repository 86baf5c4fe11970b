"""Measure an organisation against the published realism targets, from the tables alone.

Every figure is computed from the contract tables (plus the optional ``segment`` column of
deals), so the same function can describe a real CRM export next to the simulator.
Definitions:

* win rates: won / (won + lost) over deals closed by ``extracted_at``;
* cycle: median days from ``created_at`` to ``closed_at`` over won deals, per segment;
* annual attainment: the same over calendar years in which the rep had four full quarters
  (the attainment bands are checked on it: survey respondents report a year);
* attainment: won amount with ``closed_at`` in the quarter, credited to the deal's ``rep_id``,
  divided by ``quota_amount``, over *full* rep-quarters (a ramped AE - hired 9+ months before -
  employed the whole quarter, quarter ended by ``extracted_at``);
* coverage: amount of open deals (as of ``period_start``, amounts replayed from history) owned
  by the rep, over the quarter's quota; median over full rep-quarters;
* turnover: AE exits per year over mean AE headcount; tenure: mean tenure of AEs employed at
  ``extracted_at``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spm_ml.data.simulate.config import Range, RealismTargets
from spm_ml.data.tables import Tables

logger = logging.getLogger(__name__)

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Check:
    """One measured figure against its target range."""

    name: str
    value: float
    target: Range

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.value)) and self.value in self.target


def rep_quarter_attainment(tables: Tables, ramped_after_months: float = 9.0) -> pd.DataFrame:
    """Per quota row: bookings, attainment, open pipeline at period start and coverage.

    Adds ``full``: a ramped AE (hired at least ``ramped_after_months`` before the quarter)
    employed for the whole quarter, and the quarter ended by ``extracted_at``.  Survey
    figures on attainment are usually quoted for ramped reps; ramping reps carry token quotas
    whose attainment is noise.
    """
    deals = tables.deals
    quotas = tables.quotas.copy()
    reps = tables.reps.set_index("rep_id")
    end = tables.extracted_at
    won = deals[deals["outcome"] == "won"]
    q_next = quotas["period_end"] + DAY
    bookings = np.zeros(len(quotas))
    pipeline = np.zeros(len(quotas))
    amounts = _amount_asof_table(tables)
    for ps in quotas["period_start"].unique():
        rows = np.flatnonzero(quotas["period_start"].to_numpy() == ps)
        qe = q_next.iloc[rows[0]]
        w = won[(won["closed_at"] >= ps) & (won["closed_at"] < qe)]
        by_rep = w.groupby("rep_id")["amount"].sum()
        bookings[rows] = by_rep.reindex(quotas["rep_id"].iloc[rows]).fillna(0.0).to_numpy()
        open_at = deals[
            (deals["created_at"] < ps) & (deals["closed_at"].isna() | (deals["closed_at"] >= ps))
        ]
        amt = _amount_at(amounts, open_at["deal_id"], ps)
        pipe = pd.Series(amt, index=open_at["rep_id"].to_numpy()).groupby(level=0).sum()
        pipeline[rows] = pipe.reindex(quotas["rep_id"].iloc[rows]).fillna(0.0).to_numpy()
    quotas["bookings"] = bookings
    quotas["attainment"] = bookings / quotas["quota_amount"].where(quotas["quota_amount"] > 0)
    quotas["pipeline_at_start"] = pipeline
    quotas["coverage"] = pipeline / quotas["quota_amount"].where(quotas["quota_amount"] > 0)
    hire = reps["hire_date"].reindex(quotas["rep_id"]).to_numpy()
    exit_ = reps["exit_date"].reindex(quotas["rep_id"]).to_numpy()
    role = reps["role"].reindex(quotas["rep_id"]).to_numpy()
    ended = q_next.to_numpy() <= np.datetime64(end)
    stays = pd.isna(exit_) | (exit_ >= q_next.to_numpy())
    ramped = (
        hire <= (quotas["period_start"] - pd.Timedelta(days=30.44 * ramped_after_months)).to_numpy()
    )
    quotas["full"] = ramped & stays & ended & (role == "AE")
    return quotas


def _amount_asof_table(tables: Tables) -> pd.DataFrame:
    h = tables.deal_history
    h = h[h["field"] == "amount"][["deal_id", "changed_at", "new_value"]].copy()
    h["amount"] = h["new_value"].astype(float)
    return h.sort_values("changed_at")


def _amount_at(history: pd.DataFrame, deal_ids: pd.Series, at: pd.Timestamp) -> np.ndarray:
    """Amount of each deal as of ``at`` (last amount row strictly before it)."""
    h = history[history["changed_at"] < at]
    last = h.drop_duplicates("deal_id", keep="last").set_index("deal_id")["amount"]
    return last.reindex(deal_ids.to_numpy()).fillna(0.0).to_numpy()


def measure_realism(tables: Tables) -> dict[str, float]:
    """The realism figures of ``tables`` (see the module docstring for definitions)."""
    deals = tables.deals
    closed = deals[deals["outcome"].notna()]
    is_won = closed["outcome"] == "won"
    out: dict[str, float] = {"win_rate": float(is_won.mean())}
    seg = closed["segment"] if "segment" in closed else pd.Series("unknown", index=closed.index)
    for name in ("smb", "mid_market", "enterprise"):
        out[f"win_rate_{name}"] = float(is_won[seg == name].mean())
    large = (seg == "enterprise") & (closed["amount"] > 100_000)
    out["win_rate_large"] = float(is_won[large].mean())
    days = (closed["closed_at"] - closed["created_at"]) / DAY
    for name in ("smb", "mid_market", "enterprise"):
        out[f"cycle_days_{name}"] = float(days[is_won & (seg == name)].median())

    rq = rep_quarter_attainment(tables)
    full = rq[rq["full"]]
    att = full["attainment"].to_numpy()
    out["share_at_quota"] = float(np.mean(att >= 1.0))
    out["attainment_mean"] = float(np.mean(att))
    out["attainment_median"] = float(np.median(att))
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0), (1.0, 1.2), (1.2, np.inf)):
        out[f"attainment_{lo:g}_{hi:g}"] = float(np.mean((att >= lo) & (att < hi)))
    year = full.assign(year=full["period_start"].dt.year)
    whole = year.groupby(["rep_id", "year"]).filter(lambda g: len(g) == 4)
    sums = whole.groupby(["rep_id", "year"])[["bookings", "quota_amount"]].sum()
    annual = (sums["bookings"] / sums["quota_amount"]).to_numpy()
    out["annual_attainment_n"] = float(len(annual))
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 1.0), (1.0, 1.2), (1.2, np.inf)):
        out[f"annual_attainment_{lo:g}_{hi:g}"] = float(np.mean((annual >= lo) & (annual < hi)))
    out["pipeline_coverage"] = float(full["coverage"].median())
    low = full["coverage"] < 2.0
    out["miss_rate_coverage_below_2x"] = float(np.mean(full.loc[low, "attainment"] < 1.0))
    out["miss_rate_coverage_above_2x"] = float(np.mean(full.loc[~low, "attainment"] < 1.0))

    reps = tables.reps
    aes = reps[reps["role"] == "AE"]
    start = tables.quotas["period_start"].min()
    end = tables.extracted_at
    years = (end - start) / pd.Timedelta(days=365.25)
    leavers = aes["exit_date"].between(start, end, inclusive="left")
    months = pd.date_range(start, end, freq="MS", inclusive="left")
    headcount = [
        ((aes["hire_date"] <= m) & (aes["exit_date"].isna() | (aes["exit_date"] > m))).sum()
        for m in months
    ]
    out["annual_turnover"] = float(leavers.sum() / years / np.mean(headcount))
    out["voluntary_share"] = float((aes.loc[leavers, "exit_reason"] == "voluntary").mean())
    current = aes[aes["exit_date"].isna() & (aes["hire_date"] <= end)]
    out["tenure_years"] = float(((end - current["hire_date"]) / pd.Timedelta(days=365.25)).mean())
    return out


def realism_report(tables: Tables, targets: RealismTargets | None = None) -> list[Check]:
    """Each targeted figure with its range; bands get ``targets.band_tolerance`` of slack."""
    targets = targets or RealismTargets()
    fig = measure_realism(tables)
    tol = targets.band_tolerance
    checks = [
        Check("win_rate", fig["win_rate"], targets.win_rate),
        Check("win_rate_smb", fig["win_rate_smb"], targets.win_rate_smb),
        Check("win_rate_large", fig["win_rate_large"], targets.win_rate_large),
        Check("cycle_days_smb", fig["cycle_days_smb"], targets.cycle_days_smb),
        Check("cycle_days_mid_market", fig["cycle_days_mid_market"], targets.cycle_days_mid_market),
        Check("cycle_days_enterprise", fig["cycle_days_enterprise"], targets.cycle_days_enterprise),
        Check("share_at_quota", fig["share_at_quota"], targets.share_at_quota),
        Check("attainment_mean", fig["attainment_mean"], targets.attainment_mean),
        Check("pipeline_coverage", fig["pipeline_coverage"], targets.pipeline_coverage),
        Check("annual_turnover", fig["annual_turnover"], targets.annual_turnover),
        Check("tenure_years", fig["tenure_years"], targets.tenure_years),
    ]
    for lo, hi, rng in targets.attainment_bands:
        name = f"annual_attainment_{lo:g}_{hi:g}"
        checks.append(Check(name, fig[name], Range(rng.low - tol, rng.high + tol)))
    return checks
