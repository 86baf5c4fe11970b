"""The as-of index's fast paths for a request's few rows give the bits the bulk paths give.

Serving featurises a handful of rows with plain-Python loops and dict lookups where training
uses pandas' vectorised calls; the service's scores equal the batch job's only if both paths
agree exactly, not approximately.
"""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from spm_ml.data.schema import TABLES
from spm_ml.features.asof import (
    SMALL_RUNNING,
    entity_codes,
    known_at_index,
    running_sums,
    take,
)

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), finite), min_size=0, max_size=SMALL_RUNNING))
def test_small_running_sums_are_pandas_grouped_cumsum_to_the_bit(rows):
    groups = np.sort(np.array([g for g, _ in rows], dtype=np.int64))
    values = np.array([v for _, v in rows], dtype=np.float64)
    expected = pd.Series(values).groupby(groups, sort=False).cumsum().to_numpy()
    np.testing.assert_array_equal(running_sums(values, groups), expected)


def test_running_sums_compensate_like_pandas():
    """Kahan compensation: 1e16 + 1 + 1 is 1e16 + 2 in pandas, 1e16 in a plain cumsum."""
    values = np.array([1e16, 1.0, 1.0, 5.0])
    groups = np.array([0, 0, 0, 1])
    assert running_sums(values, groups)[2] == 1e16 + 2
    assert np.cumsum(values)[2] == 1e16
    assert running_sums(values, groups)[3] == 5.0  # a new group starts from zero


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["D1", "D2", "D3", "D4", None]), max_size=200),
    st.lists(st.sampled_from(["D1", "D2", "D3", "D9"]), min_size=1, max_size=4, unique=True),
)
def test_entity_codes_match_pandas_get_indexer(entities, vocabulary):
    index = pd.Index(vocabulary, dtype=object)
    expected = index.get_indexer(pd.Index(entities, dtype=object))
    got = entity_codes(pd.Series(entities, dtype=object), index)
    np.testing.assert_array_equal(got, expected)


def test_known_at_cuts_each_column_when_its_value_is_known():
    """Mid-quarter, this quarter's base pay is known but the incentive paid for it is not."""
    pay = pd.DataFrame(
        {
            "rep_id": ["R1", "R1"],
            "period_start": pd.to_datetime(["2024-01-01", "2024-04-01"]),
            "period_end": pd.to_datetime(["2024-03-31", "2024-06-30"]),
            "base_pay": [100.0, 110.0],
            "paid_incentive": [20.0, 35.0],
        }
    )
    reps = pd.Index(["R1"], dtype=object)
    ask = pd.Series(["R1", "R1"], dtype=object)
    when = pd.Series(pd.to_datetime(["2024-05-15", "2024-07-02"]))

    def latest(column: str) -> list[float]:
        index = known_at_index(pay, "compensation", column, "rep_id", reps)
        return take(pay[column], index.last(ask, when)).tolist()

    assert latest("base_pay") == [110.0, 110.0]
    assert latest("paid_incentive") == [20.0, 35.0]


def test_every_known_at_names_a_time_column_of_its_table():
    for table in TABLES.values():
        for column in table.columns:
            if column.known_at is not None:
                assert table.column(column.known_at).kind == "datetime", (table.name, column.name)
