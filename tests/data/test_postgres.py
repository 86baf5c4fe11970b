"""Loading the contract from PostgreSQL on 127.0.0.1:5432 (started here if it is down).

Each test writes into its own schema, so runs never see each other's tables.  The
``postgres`` fixture (tests/conftest.py) starts the server or skips with the reason.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from spm_ml.data.io import check_source, load_tables, write_tables_sql

pytestmark = pytest.mark.postgres


@pytest.fixture
def schema_url(postgres):
    import sqlalchemy as sa

    schema = f"spm_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{postgres}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


def test_round_trip_through_postgres(tiny, schema_url):
    write_tables_sql(tiny, schema_url)
    tables = load_tables(schema_url, as_of=tiny.extracted_at)
    for name, frame in tiny.items():
        got = getattr(tables, name)
        assert len(got) == len(frame), name
    pd.testing.assert_series_equal(tables.deals["amount"], tiny.deals["amount"])
    assert tables.deals["closed_at"].dtype == "datetime64[ns]"


def test_problems_are_located_in_postgres_rows(tiny, schema_url):
    deals = tiny.deals.copy()
    deals.loc[1, "rep_id"] = "NOBODY"
    write_tables_sql(tiny.replace(deals=deals), schema_url)
    _, problems = check_source(schema_url)
    (problem,) = [p for p in problems if p.kind == "dangling_reference"]
    assert problem.row == "row 2 (deal_id=D2)" and problem.column == "rep_id"


def test_wrong_database_name_is_a_clear_error(postgres):
    from spm_ml.errors import SourceError

    with pytest.raises(SourceError, match="unreachable"):
        load_tables("postgresql://postgres@127.0.0.1:5432/no_such_db_spm")
