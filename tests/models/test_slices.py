"""Per-slice metrics: every held-out row lands in one value of each slice, weak slices show."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.models.slices import MIN_SLICE_ROWS, deal_slices, slice_metrics


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "custom_segment": rng.choice(["smb", "mid", "ent"], n),
            "amount": rng.lognormal(10, 1, n),
            "rep_tenure_days": rng.integers(0, 900, n).astype(float),
            "stage": rng.choice(["discovery", "proposal"], n),
        }
    )


def test_size_bands_come_from_training_amounts_and_cover_every_row():
    train, test = frame(3000, 0), frame(500, 1)
    slices = deal_slices(test, train)
    assert set(slices) == {"segment", "size_band", "rep_history", "stage"}
    low = np.quantile(train["amount"], 1 / 3)
    small = slices["size_band"].astype(str).str.startswith("small")
    assert (test.loc[small, "amount"] < low).all()
    assert (test.loc[~small, "amount"] >= low).all()
    # judging different rows must not move the band edges
    assert deal_slices(test.head(10), train)["size_band"].equals(slices["size_band"].head(10))
    records = slice_metrics(np.zeros(500), {}, {"size_band": slices["size_band"]}, np.arange(500))
    assert [r["value"].split()[0] for r in records] == ["small", "medium", "large"]


def test_slices_missing_from_the_data_are_left_out():
    train, test = frame(100, 0), frame(100, 1)
    slices = deal_slices(test.drop(columns=["custom_segment", "stage"]), train)
    assert set(slices) == {"size_band", "rep_history"}


def test_metrics_per_slice_show_where_the_model_is_weak():
    test = frame(4000, 2)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, len(test))
    # a model that knows the outcome except on enterprise deals, where it guesses
    p = np.where(test["custom_segment"] == "ent", rng.random(len(test)), 0.2 + 0.6 * y)
    groups = np.arange(len(test)) // 2
    records = slice_metrics(y, {"model": p}, deal_slices(test, test), groups)
    by_value = {(r["slice"], r["value"]): r for r in records}
    assert by_value[("segment", "ent")]["model_roc_auc"] < 0.6
    assert by_value[("segment", "smb")]["model_roc_auc"] == 1.0
    for kind in ("segment", "size_band", "rep_history", "stage"):
        assert sum(r["n_rows"] for r in records if r["slice"] == kind) == len(test)


def test_tiny_slices_report_their_size_but_no_metrics():
    test = frame(MIN_SLICE_ROWS + 10, 4)
    test.loc[:4, "custom_segment"] = "rare"
    y = np.tile([0, 1], len(test))[: len(test)]
    records = slice_metrics(
        y, {"model": np.full(len(test), 0.5)}, deal_slices(test, test), np.arange(len(test))
    )
    rare = next(r for r in records if r["value"] == "rare")
    assert rare["n_rows"] == 5 and "model_roc_auc" not in rare
