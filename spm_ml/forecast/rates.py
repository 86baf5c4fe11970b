"""What past periods teach the Monte Carlo: slips, amount changes and not-yet-created deals.

Learned from training periods only (closed before the test window), stored with the model:

- **slip**: among open deals later won, the probability that the win lands before the
  period's close, from the days left, when the deal was expected to close, and its stage
  (a logistic regression: a handful of smooth effects, no need for more); with
  ``slip_size`` also the deal's log amount (big deals take longer: on the simulated
  organisation a won deal under 20k closed inside the period 94% of the time, one of
  60-150k 31%, where the model without size said 51% and 54%); with ``slip_standing``
  also the owning rep's standing at ``as_of`` (:func:`_standing_inputs`): reps manage deal
  timing around the period's end, so a rep far above quota lets late wins slip into the
  next period and one below it pulls next period's wins in (simulated organisation, seed
  1, mid-period: won deals expected in the period landed in it 78% of the time for reps at
  25-50% of quota, 20% for reps above 115%);
- **amount change**: per stage, the median ratio of the amount at the close to the amount at
  ``as_of`` among won deals (deals shrink in negotiation);
- **new deals**: per team (where it has enough history, else the company) and fraction of
  the period elapsed, what reps booked from deals created after
  ``as_of`` and won by the period's close, as shares of quota: drawn as they happened;
- **stage rates** for the stage-weighted pipeline reference: per stage, the share of open
  deals won inside the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from spm_ml.data.schema import OPEN_STAGES

MIN_SLIP_WINS = 30
"""Wins inside and outside the period the settled snapshots need before the slip model
learns from them alone (``PeriodRates.learn(slip_known_by=...)``)."""
MIN_TEAM_OBSERVATIONS = 30
"""A team's own pool of new-deal bookings needs this many past snapshots at a fraction."""


@dataclass
class PeriodRates:
    """The learned rates; see the module docstring."""

    slip_: LogisticRegression | None
    """None when history holds one kind of win only: then :attr:`in_period_share_` applies."""
    in_period_share_: float
    amount_change_: dict[str, float]
    new_deal_shares_: dict[str, dict[float, np.ndarray]]
    """Per pool (a team, or ``"*"`` for the company) and fraction elapsed: the observed
    bookings from not-yet-created deals, as shares of quota."""
    stage_rates_: dict[str, float]
    slip_size_: bool = False
    """The slip model reads the deal's log amount too (see the module docstring)."""
    slip_standing_: bool = False
    """The slip model reads the owning rep's standing too (see the module docstring)."""

    @classmethod
    def learn(
        cls,
        deals: pd.DataFrame,
        snapshots: pd.DataFrame,
        *,
        slip_size: bool = False,
        slip_known_by: pd.Timestamp | None = None,
        slip_standing: bool = False,
    ) -> PeriodRates:
        """Learn from training rows.

        ``deals``: open-deal rows of training snapshots with ``stage``, ``days_left``,
        ``days_to_expected_close``, ``won`` (closed won, known before the test window),
        ``won_in_period`` and ``close_amount_ratio`` (amount at close / amount at as_of,
        NaN unless won).  ``snapshots``: training snapshots with ``fraction_elapsed`` and
        ``new_deal_share`` (and ``team``: teams with at least :data:`MIN_TEAM_OBSERVATIONS`
        at a fraction get their own pool, a team's creation and conversion pace).

        ``slip_known_by``: the slip model learns only from snapshots taken before it (when
        the rows have ``as_of`` and at least :data:`MIN_SLIP_WINS` wins of each kind are
        there).  A win is known once it has happened, so snapshots close to the cut-off
        hold their fast wins and not yet their slow ones, and the share won inside the
        period reads high (0.73 from the one quarter before 2024Q2 on the simulated
        organisation); snapshots old enough for their slow wins to have come do not.
        """
        won = deals[deals["won"].to_numpy(dtype=bool)]
        if slip_known_by is not None and "as_of" in won:
            settled = won[(won["as_of"] < slip_known_by).to_numpy()]
            kinds = settled["won_in_period"].astype(bool)
            if min(int(kinds.sum()), int((~kinds).sum())) >= MIN_SLIP_WINS:
                won = settled
        target = won["won_in_period"].to_numpy(dtype=int)
        share = float(target.mean()) if len(target) else 0.5
        slip = None
        if len(np.unique(target)) == 2:
            inputs = _slip_inputs(won, slip_size, slip_standing)
            slip = LogisticRegression(C=1.0, max_iter=1000).fit(inputs, target)
        ratios = won["close_amount_ratio"].clip(0.2, 5.0)
        overall = float(ratios.median()) if ratios.notna().any() else 1.0
        by_stage = ratios.groupby(won["stage"]).median()
        amount_change = {s: float(by_stage.get(s, overall)) for s in OPEN_STAGES}
        amount_change["*"] = overall
        shares = {"*": _pools(snapshots)}
        if "team" in snapshots:
            for team, rows in snapshots.groupby("team"):
                pools = {
                    f: pool
                    for f, pool in _pools(rows).items()
                    if len(pool) >= MIN_TEAM_OBSERVATIONS
                }
                if pools:
                    shares[str(team)] = pools
        in_period = deals["won_in_period"].astype(float)
        rates = in_period.groupby(deals["stage"]).mean()
        overall_rate = float(in_period.mean()) if len(in_period) else 0.0
        stage_rates = {s: float(rates.get(s, overall_rate)) for s in OPEN_STAGES}
        return cls(slip, share, amount_change, shares, stage_rates, slip_size, slip_standing)

    def to_dict(self) -> dict:
        """A JSON-able copy (logged with the model's run; :meth:`from_dict` reads it back)."""
        slip = None
        if self.slip_ is not None:
            slip = {
                "coef": self.slip_.coef_.tolist(),
                "intercept": self.slip_.intercept_.tolist(),
            }
        return {
            "slip": slip,
            "in_period_share": self.in_period_share_,
            "amount_change": self.amount_change_,
            "new_deal_shares": {
                pool: {str(f): v.tolist() for f, v in by_fraction.items()}
                for pool, by_fraction in self.new_deal_shares_.items()
            },
            "stage_rates": self.stage_rates_,
            "slip_size": self.slip_size_,
            "slip_standing": self.slip_standing_,
        }

    @classmethod
    def from_dict(cls, values: dict) -> PeriodRates:
        slip = None
        if values["slip"] is not None:
            slip = LogisticRegression()
            slip.coef_ = np.asarray(values["slip"]["coef"])
            slip.intercept_ = np.asarray(values["slip"]["intercept"])
            slip.classes_ = np.array([0, 1])
        return cls(
            slip,
            float(values["in_period_share"]),
            {k: float(v) for k, v in values["amount_change"].items()},
            {
                pool: {float(f): np.asarray(v, dtype=np.float64) for f, v in by_fraction.items()}
                for pool, by_fraction in values["new_deal_shares"].items()
            },
            {k: float(v) for k, v in values["stage_rates"].items()},
            bool(values.get("slip_size", False)),
            bool(values.get("slip_standing", False)),
        )

    def p_in_period(self, deals: pd.DataFrame) -> np.ndarray:
        """Probability that each open deal, if won, is won before its period's close."""
        if self.slip_ is None or deals.empty:
            return np.full(len(deals), self.in_period_share_)
        inputs = _slip_inputs(deals, self.slip_size_, self.slip_standing_)
        return self.slip_.predict_proba(inputs)[:, 1]

    def amount_change(self, stages: np.ndarray) -> np.ndarray:
        """Expected ratio of the amount at close to the amount now, per deal."""
        default = self.amount_change_["*"]
        return np.array([self.amount_change_.get(s, default) for s in stages], dtype=np.float64)

    def stage_rate(self, stages: np.ndarray) -> np.ndarray:
        """Historical share of open deals at each stage won inside the period."""
        return np.array([self.stage_rates_.get(s, 0.0) for s in stages], dtype=np.float64)

    def new_deal_draws(
        self,
        fractions: np.ndarray,
        n_draws: int,
        rng: np.random.Generator,
        teams: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(n_snapshots, n_draws)`` bookings from deals not created yet, shares of quota,
        resampled from past periods at the nearest learned fraction: from the rep's team's
        pool where it has one, else the company's."""
        out = np.zeros((len(fractions), n_draws))
        fractions = np.asarray(fractions, dtype=np.float64)
        company = self.new_deal_shares_.get("*", {})
        known = np.array(sorted(company))
        if not len(known):
            return out
        nearest = known[np.abs(fractions[:, None] - known[None, :]).argmin(axis=1)]
        teams = np.full(len(fractions), "*", dtype=object) if teams is None else teams
        for row, (team, f) in enumerate(zip(teams, nearest, strict=True)):
            pool = self.new_deal_shares_.get(str(team), {}).get(float(f), company[float(f)])
            out[row] = rng.choice(pool, size=n_draws, replace=True)
        return out

    def mean_new_deal_share(self, fractions: np.ndarray) -> np.ndarray:
        """The company's mean bookings from not-yet-created deals at the nearest fraction."""
        company = self.new_deal_shares_.get("*", {})
        if not company:
            return np.zeros(len(fractions))
        known = np.array(sorted(company))
        means = np.array([company[f].mean() for f in known])
        nearest = np.abs(np.asarray(fractions)[:, None] - known[None, :]).argmin(axis=1)
        return means[nearest]


def _pools(snapshots: pd.DataFrame) -> dict[float, np.ndarray]:
    return {
        float(f): group.to_numpy(dtype=np.float64)
        for f, group in snapshots.groupby("fraction_elapsed")["new_deal_share"]
    }


def _slip_inputs(deals: pd.DataFrame, size: bool = False, standing: bool = False) -> np.ndarray:
    days_left = deals["days_left"].to_numpy(dtype=np.float64)
    expected = deals["days_to_expected_close"].to_numpy(dtype=np.float64)
    expected = np.where(np.isnan(expected), days_left, expected)
    slack = np.clip(days_left - expected, -180, 180) / 30.0
    stage = deals["stage"].to_numpy(dtype=object)
    due = (expected <= days_left).astype(float)
    columns = [days_left / 30.0, slack, due]
    columns += [(stage == s).astype(float) for s in OPEN_STAGES[1:]]
    if size:
        amount = np.nan_to_num(deals["amount"].to_numpy(dtype=np.float64))
        columns.append(np.log1p(np.maximum(amount, 0.0)) - 10.0)
    if standing:
        columns += _standing_inputs(deals, due)
    return np.column_stack(columns)


STANDING_BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.15), (1.15, np.inf))
"""Bands of the owner's attainment to date the slip model reads.  Bands, not a line: the
in-period share of won deals is not monotone in it (simulated organisation, seed 1,
mid-period, deals expected in the period: 0.63 below 25% of quota, 0.78 at 25-50%, 0.50
at 75-100%, 0.20 above 115%; the lowest band is mostly reps ramping up or winding down,
not reps pulling deals in)."""


def _standing_inputs(deals: pd.DataFrame, due: np.ndarray) -> list[np.ndarray]:
    """The owning rep's standing at ``as_of`` (:func:`~spm_ml.training.quota_risk.rep_standing`):
    their band of attainment to date, alone and for deals expected to close in the period
    (a rep far above quota lets those slip out, one below it brings next period's in), and
    attainment and its excess over quota times the share of the period elapsed (half-way
    through, 60% of quota says more about the period's end than at an eighth).  A rep
    without a quota is in no band and reads zeros (as every rep of an organisation without
    quotas does): the deal's own terms decide."""
    attained = deals["rep_attainment"].to_numpy(dtype=np.float64)
    known = np.isfinite(attained)
    attained = np.where(known, np.clip(attained, 0.0, 3.0), 0.0)
    elapsed = np.clip(deals["rep_elapsed"].to_numpy(dtype=np.float64), 0.0, 1.0)
    columns = []
    for low, high in STANDING_BANDS:
        band = (known & (attained >= low) & (attained < high)).astype(float)
        columns += [band, band * due]
    return [*columns, attained * elapsed, np.maximum(attained - 1.0, 0.0) * elapsed]
