"""The slip model knows the owning rep's standing: reps manage deal timing at period end."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from spm_ml.features.attainment import Bookings
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig
from spm_ml.features.snapshots import extraction_time
from spm_ml.forecast.bookings import ForecastConfig, history_inputs, rates_at
from spm_ml.forecast.periods import periods_of
from spm_ml.forecast.rates import PeriodRates
from spm_ml.training.quota_risk import rep_standing


def test_rep_standing_is_booked_to_date_over_quota():
    snapshots = pd.DataFrame({"quota": [200.0, np.nan, 0.0], "fraction_elapsed": 0.5})
    standing = rep_standing(snapshots, np.array([0, 0, 1, 2]), np.array([100.0, 5, 5]))
    assert standing["rep_attainment"] == pytest.approx([0.5, 0.5, np.nan, np.nan], nan_ok=True)
    assert (standing["rep_elapsed"] == 0.5).all()
    # quota risk's snapshots carry the quota as their scale
    scaled = pd.DataFrame({"quota_amount": [200.0], "fraction_elapsed": 0.25})
    assert rep_standing(scaled, np.array([0]), np.array([300.0]))["rep_attainment"] == [1.5]


def _slip_gap(manage: bool) -> float:
    """Learned P(a won deal lands in the period) for the deals of a simulated organisation's
    past periods, owner at half their quota minus owner at 1.5 times it."""
    from spm_ml.data.simulate import SimulationConfig, simulate

    config = SimulationConfig(n_reps=20, months=15, seed=0)
    if not manage:
        knobs = replace(config.deals, quarter_end_push=0.0, quarter_end_pull_in=0.0)
        config = replace(config, deals=knobs)
    tables = simulate(config).tables
    context = DealContext.build(tables, DealFeatureConfig(email_sentiment=False))
    periods = [p for p in periods_of(tables) if p.close <= extraction_time(tables)]
    history = history_inputs(
        tables, periods, (0.25, 0.5, 0.75), context=context, bookings=Bookings.build(tables)
    )
    rates = rates_at(tables, history, periods[-1].close, ForecastConfig(slip_settle_days=None))
    deals = history.deals
    below = rates.p_in_period(deals.assign(rep_attainment=0.5)).mean()
    above = rates.p_in_period(deals.assign(rep_attainment=1.5)).mean()
    return float(below - above)


def test_the_slip_model_learns_quarter_end_management_from_the_data():
    """Reps far above quota let late wins slip into the next quarter (the simulator's
    quarter-end push): the learned slip model lands fewer of their wins in the period.
    Without that management in the simulated organisation, the gap is not there."""
    managed, unmanaged = _slip_gap(manage=True), _slip_gap(manage=False)
    assert managed > 0.2
    assert managed - unmanaged > 0.2


def test_a_slip_model_without_standing_ignores_it_and_round_trips_with_it():
    n = 600
    rng = np.random.default_rng(1)
    attainment = rng.uniform(0, 2, n)
    deals = pd.DataFrame(
        {
            "stage": "proposal",
            "days_left": 45.0,
            "days_to_expected_close": 20.0,
            "amount": 10_000.0,
            "won": True,
            "won_in_period": rng.random(n) < np.where(attainment > 1.15, 0.2, 0.8),
            "close_amount_ratio": 1.0,
            "rep_attainment": attainment,
            "rep_elapsed": 0.5,
        }
    )
    snapshots = pd.DataFrame({"fraction_elapsed": [0.5], "new_deal_share": [0.0]})
    probe = deals.iloc[:2].assign(rep_attainment=[0.5, 1.6])
    plain = PeriodRates.learn(deals, snapshots).p_in_period(probe)
    assert plain[0] == plain[1]
    rates = PeriodRates.learn(deals, snapshots, slip_standing=True)
    knowing = rates.p_in_period(probe)
    assert knowing[0] > 0.7 and knowing[1] < 0.3
    again = PeriodRates.from_dict(rates.to_dict())
    assert again.p_in_period(probe) == pytest.approx(knowing)
    # no quota known: the standing says nothing, the deal's own terms decide
    unknown = rates.p_in_period(probe.assign(rep_attainment=np.nan))
    assert unknown[0] == unknown[1]
