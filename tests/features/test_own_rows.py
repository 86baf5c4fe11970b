"""A few deals featurised from their own rows, cut out of the organisation first
(:meth:`DealContext.own_rows`: the batch's chunks), get exactly the features they get from
the whole organisation: same values, same bits, same dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from planted import with_tracked_field

from spm_ml.data.tables import Tables
from spm_ml.features import deals as deal_module
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features, open_deals_at
from spm_ml.features.snapshots import deal_snapshots

CONFIG = DealFeatureConfig(custom_fields=("priority", "segment"))


@pytest.fixture(scope="module")
def org() -> Tables:
    from spm_ml.data.simulate import SimulationConfig, simulate

    tables = simulate(SimulationConfig(n_reps=8, months=8, seed=5)).tables
    scores = np.random.default_rng(0).dirichlet([1, 1, 1], len(tables.emails))
    emails = tables.emails.assign(
        p_negative=scores[:, 0], p_neutral=scores[:, 1], p_positive=scores[:, 2]
    )
    tables, _ = with_tracked_field(tables.replace(emails=emails), "priority", ("a", "b"))
    return tables


def _whole(org: Tables, context: DealContext, snapshots: pd.DataFrame, monkeypatch):
    """Features built from the whole organisation (the cut switched off)."""
    with monkeypatch.context() as patch:
        patch.setattr(deal_module, "OWN_ROWS_SHARE", -1.0)
        return deal_features(context.tables, snapshots, CONFIG, context)


def test_chunks_of_open_deals_equal_the_whole_organisation(org, monkeypatch):
    context = DealContext.build(org, CONFIG)
    as_of = org.extracted_at - pd.Timedelta(days=40)
    open_now = open_deals_at(org, as_of).sort_values("deal_id").reset_index(drop=True)
    assert len(open_now) > 40
    whole = _whole(org, context, open_now, monkeypatch)
    cut_calls = []
    original = DealContext.own_rows

    def counted(self, positions):
        cut_calls.append(len(np.unique(positions)))
        return original(self, positions)

    monkeypatch.setattr(DealContext, "own_rows", counted)
    chunks = [open_now.iloc[i : i + 17] for i in range(0, len(open_now), 17)]
    parts = [deal_features(context.tables, c, CONFIG, context) for c in chunks]
    assert cut_calls and max(cut_calls) <= 17  # every chunk was cut to its own deals
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole, check_exact=True)


def test_snapshots_at_many_dates_equal_the_whole_organisation(org, monkeypatch):
    """Training-like snapshots (the same deal at several dates, closed deals too) of a few
    deals: the cut keeps each deal's every row, history and custom fields included."""
    context = DealContext.build(org, CONFIG)
    snapshots = deal_snapshots(org)
    few = snapshots[snapshots["deal_id"].isin(snapshots["deal_id"].unique()[:25])]
    few = few[["deal_id", "as_of"]].reset_index(drop=True)
    whole = _whole(org, context, few, monkeypatch)
    cut = deal_features(context.tables, few, CONFIG, context)
    pd.testing.assert_frame_equal(cut, whole, check_exact=True)


def test_the_cut_holds_each_deals_rows_in_table_order(org):
    context = DealContext.build(org, CONFIG)
    deals = org.deals["deal_id"]
    positions = np.array([7, 3, 3, 50])
    cut = context.own_rows(positions)
    wanted = list(dict.fromkeys(deals.iloc[positions]))
    assert sorted(cut.deals["deal_id"]) == sorted(wanted)
    for name in ("deal_history", "activities", "emails"):
        frame, part = getattr(context.tables, name), getattr(cut, name)
        assert len(part) == frame["deal_id"].isin(wanted).sum()
        for deal in wanted:
            ours = _text_as_objects(part[part["deal_id"] == deal].reset_index(drop=True))
            theirs = frame.loc[frame["deal_id"] == deal, list(part.columns)]
            pd.testing.assert_frame_equal(
                ours,
                _text_as_objects(theirs.reset_index(drop=True)),
                check_dtype=False,
                check_exact=True,
            )


def _text_as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects: the cut holds some as codes (categoricals)."""
    text = [
        c
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(frame[c].dtype)
    ]
    return frame.astype(dict.fromkeys(text, object))


def test_the_cut_codes_text_on_shared_vocabularies(org):
    """Contacts are coded alike in activities and emails (one contact, one code), and the
    event tables' ``deal_id`` is coded over the cut's own deals."""
    context = DealContext.build(org, CONFIG)
    cut = context.own_rows(np.arange(0, 60, 3))
    activities, emails = cut.activities["contact_id"], cut.emails["contact_id"]
    assert activities.dtype is emails.dtype
    assert isinstance(activities.dtype, pd.CategoricalDtype)
    shared = set(activities.dropna()) & set(emails.dropna())
    assert shared
    for contact in shared:
        in_activities = activities.cat.codes[activities == contact].unique()
        in_emails = emails.cat.codes[emails == contact].unique()
        assert len(in_activities) == 1 and in_activities[0] == in_emails[0]
    deals = cut.activities["deal_id"]
    assert set(deals.cat.categories) == set(cut.deals["deal_id"])


def test_a_requests_rows_carry_numpy_columns_equal_to_their_frames(org):
    """``rows_for`` attaches each cut column as a numpy slice (what request features read):
    every slice must be the frame's own column, with or without private keys."""
    from spm_ml.features.asof import column, values_of

    context = DealContext.build(org, DealFeatureConfig())
    ids = open_deals_at(org, org.extracted_at)["deal_id"].tolist()[:5]
    for cut in (
        context.rows_for(ids[:1]),
        context.rows_for(ids),
        context.rows_for(ids[:2], keys=["\x000", "\x001"]),
    ):
        for name in ("deals", "deal_history", "activities", "emails"):
            frame = getattr(cut, name)
            for c in frame.columns:
                attached = values_of(frame, c)
                assert isinstance(attached, np.ndarray), (name, c)
                assert attached is column(frame, c)
                pd.testing.assert_series_equal(  # NaN equal to NaN, dtypes compared
                    pd.Series(attached), pd.Series(frame[c].to_numpy()), obj=f"{name}.{c}"
                )
            # a frame derived from a cut carries nothing: pandas reads its own columns
            derived = frame.assign(extra=1)
            assert isinstance(values_of(derived, frame.columns[0]), pd.Series)
