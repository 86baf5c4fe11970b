"""The quota-risk Monte Carlo on cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spm_ml.forecast.monte_carlo import draw_attainment, draw_pipeline
from spm_ml.forecast.rates import PeriodRates

DRAWS = 40_000
TOLERANCE = 4 * np.sqrt(0.25 / DRAWS)  # four standard errors of a proportion


def test_two_coin_flip_deals():
    """Quota 100, nothing booked, two deals of 60 at 50%: the rep makes quota only if both
    close, so P(miss) = 1 - 0.5 * 0.5 = 0.75 and expected attainment 0.6."""
    draws = draw_attainment(
        booked_share=np.array([0.0]),
        deal_snapshot=np.array([0, 0]),
        p_close_won=np.array([0.5, 0.5]),
        value_share=np.array([0.6, 0.6]),
        new_deal_draws=np.zeros((1, DRAWS)),
    )
    assert draws.p_miss[0] == pytest.approx(0.75, abs=TOLERANCE)
    assert draws.expected[0] == pytest.approx(0.6, abs=0.01)
    assert (draws.p10[0], draws.p50[0], draws.p90[0]) == (0.0, 0.6, 1.2)


def test_certain_outcomes_and_booked_to_date():
    """Booked 50%, one certain deal of 40%, one impossible one of 90%: always 90%, a miss;
    at a threshold of 80% never a miss."""
    args = dict(
        booked_share=np.array([0.5]),
        deal_snapshot=np.array([0, 0]),
        p_close_won=np.array([1.0, 0.0]),
        value_share=np.array([0.4, 0.9]),
        new_deal_draws=np.zeros((1, 1000)),
    )
    assert draw_attainment(**args).p_miss[0] == 1.0
    assert draw_attainment(**args, threshold=0.8).p_miss[0] == 0.0
    assert draw_attainment(**args).expected[0] == pytest.approx(0.9)


def test_new_deals_and_snapshots_do_not_mix():
    """Two snapshots: deals of one never count for the other; new-deal draws add on."""
    new = np.zeros((3, 1000))
    new[2] = 1.5  # the third rep will book 150% from deals not created yet
    draws = draw_attainment(
        booked_share=np.array([0.0, 0.9, 0.0]),
        deal_snapshot=np.array([0, 1]),
        p_close_won=np.array([1.0, 1.0]),
        value_share=np.array([2.0, 0.05]),
        new_deal_draws=new,
    )
    np.testing.assert_allclose(draws.expected, [2.0, 0.95, 1.5])
    np.testing.assert_array_equal(draws.p_miss, [0.0, 1.0, 0.0])


def numpy_pipeline(deal_snapshot, p, value, n_snapshots, n_draws, seed, factor=None):
    """The draws as plain numpy: one uniform per deal and draw, row-major from
    ``default_rng(seed)``, ``(u < p) * value`` summed per snapshot in deal order."""
    uniforms = np.random.default_rng(seed).random((len(p), n_draws))
    chance = p[:, None] if factor is None else np.minimum(p[:, None] * factor[None, :], 1.0)
    booked = (uniforms < chance) * value[:, None]
    out = np.zeros((n_snapshots, n_draws))
    owners, first = np.unique(deal_snapshot, return_index=True)
    out[owners] += np.add.reduceat(booked, first, axis=0)
    return out


@pytest.mark.parametrize("shocked", [False, True])
def test_the_draws_are_numpys_and_do_not_depend_on_the_cores(monkeypatch, shocked):
    """The compiled draws give plain numpy's floats exactly, with one part or several
    (whole snapshots per core, each reading the stream from its own first deal)."""
    from spm_ml.forecast import monte_carlo

    rng = np.random.default_rng(1)
    # snapshot 3 has no deal, snapshot 7 has 200 (a long sum: the order of adding matters)
    spread = np.concatenate([rng.integers(0, 3, 100), rng.integers(4, 50, 200)])
    deal_snapshot = np.sort(np.concatenate([spread, np.full(200, 7)]))
    p = rng.uniform(0, 1, 500)
    value = rng.uniform(0, 30_000, 500)
    factor = rng.lognormal(0, 0.5, 700) if shocked else None
    expected = numpy_pipeline(deal_snapshot, p, value, 50, 700, 9, factor)
    whole = draw_pipeline(deal_snapshot, p, value, 50, 700, seed=9, draw_factor=factor)
    np.testing.assert_array_equal(whole, expected)
    monkeypatch.setattr(monte_carlo, "PARALLEL_CELLS", 1000)
    monkeypatch.setattr(monte_carlo.os, "cpu_count", lambda: 3)
    assert len(monte_carlo._snapshot_parts(np.searchsorted(deal_snapshot, np.arange(51)), 3)) > 1
    parts = draw_pipeline(deal_snapshot, p, value, 50, 700, seed=9, draw_factor=factor)
    np.testing.assert_array_equal(parts, expected)


def test_unsorted_deal_rows_are_refused():
    with pytest.raises(ValueError, match="sorted"):
        draw_attainment(np.zeros(2), np.array([1, 0]), np.ones(2), np.ones(2), np.zeros((2, 10)))


def test_rates_learn_slips_amount_changes_and_new_deals():
    """Deals expected to close well before the period ends land in it; late ones slip."""
    n = 400
    rng = np.random.default_rng(0)
    expected_in = rng.random(n) < 0.5
    deals = pd.DataFrame(
        {
            "stage": rng.choice(["proposal", "negotiation"], n),
            "days_left": np.full(n, 45.0),
            "days_to_expected_close": np.where(expected_in, 10.0, 120.0),
            "won": True,
            "won_in_period": np.where(expected_in, rng.random(n) < 0.9, rng.random(n) < 0.1),
            "close_amount_ratio": np.full(n, 0.9),
        }
    )
    snapshots = pd.DataFrame({"fraction_elapsed": [0.5] * 4, "new_deal_share": [0, 0, 0.2, 0.4]})
    rates = PeriodRates.learn(deals, snapshots)
    p = rates.p_in_period(deals.iloc[:2].assign(days_to_expected_close=[10.0, 120.0]))
    assert p[0] > 0.8 and p[1] < 0.2
    assert rates.amount_change(np.array(["proposal", "unknown"])) == pytest.approx([0.9, 0.9])
    draws = rates.new_deal_draws(np.array([0.45]), 2000, np.random.default_rng(0))
    assert set(np.unique(draws)) <= {0.0, 0.2, 0.4}
    assert draws.mean() == pytest.approx(0.15, abs=0.02)


def test_new_deal_draws_come_from_the_team_pool_when_it_has_history():
    deals = pd.DataFrame(
        {
            "stage": ["proposal"] * 4,
            "days_left": 30.0,
            "days_to_expected_close": [10.0, 10.0, 90.0, 90.0],
            "won": True,
            "won_in_period": [True, True, False, False],
            "close_amount_ratio": 1.0,
        }
    )
    busy = pd.DataFrame({"fraction_elapsed": 0.5, "new_deal_share": 0.9, "team": ["busy"] * 40})
    small = pd.DataFrame({"fraction_elapsed": 0.5, "new_deal_share": 0.0, "team": ["small"] * 5})
    rates = PeriodRates.learn(deals, pd.concat([busy, small], ignore_index=True))
    assert set(rates.new_deal_shares_) == {"*", "busy"}  # 5 rows are too few for a pool
    draws = rates.new_deal_draws(
        np.array([0.5, 0.5, 0.5]),
        500,
        np.random.default_rng(0),
        np.array(["busy", "small", "unknown"], dtype=object),
    )
    assert (draws[0] == 0.9).all()
    company = 40 * 0.9 / 45
    assert draws[1].mean() == pytest.approx(company, abs=0.06)
    assert draws[2].mean() == pytest.approx(company, abs=0.06)
    again = PeriodRates.from_dict(rates.to_dict())
    assert set(again.new_deal_shares_) == {"*", "busy"}


def test_the_pairwise_sum_is_numpys_at_every_length():
    from spm_ml.forecast.monte_carlo import _pairwise_rows

    rng = np.random.default_rng(4)
    for n in (1, 2, 7, 8, 9, 127, 128, 129, 300, 1031, 5000):
        rows = rng.uniform(0, 3e4, (n, 3)) * (rng.random((n, 3)) < 0.4)
        expected = np.add.reduceat(rows, [0], axis=0)[0]
        rest = np.empty(3)
        _pairwise_rows(rows, 1, n - 1, rest, np.empty((8, 3)), np.empty((64, 3)))
        np.testing.assert_array_equal(rows[0] + rest, expected)
