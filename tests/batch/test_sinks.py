"""The batch sinks on their own: chunks written atomically, resumed only by the same job,
published at once; a SQL re-run for the same as-of replaces its rows (SQLite here, PostgreSQL
in test_batch_job.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from spm_ml.batch.folder_sink import MANIFEST, PARTIAL, FolderSink
from spm_ml.batch.sinks import ChunkRecord, JobState, open_sink
from spm_ml.batch.sql_sink import SqlSink, read_table, sql_engine
from spm_ml.errors import SpmMlError

AS_OF = pd.Timestamp("2024-11-15")


def state(**changes) -> JobState:
    parts = {"as_of": AS_OF.isoformat(), "inputs": "abc", "models": {"deal-win": "1"}} | changes
    return JobState(AS_OF, json.dumps(parts, sort_keys=True), parts)


def rows(ids: list[str], probability: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "as_of": pd.Series([AS_OF] * len(ids), dtype="datetime64[ns]"),
            "deal_id": pd.Series(ids, dtype=object),
            "probability": [probability] * len(ids),
            "note": pd.Series([None] * len(ids), dtype=object),
        }
    )


def test_open_sink_picks_sql_for_urls_and_folders_otherwise(tmp_path):
    assert isinstance(open_sink(str(tmp_path / "out")), FolderSink)
    assert isinstance(open_sink(f"sqlite:///{tmp_path / 'out.db'}"), SqlSink)


def test_plain_postgres_url_gets_an_installed_driver():
    engine = sql_engine("postgresql://someone@127.0.0.1:5432/db")  # no connection made
    assert engine.dialect.driver in ("psycopg", "psycopg2")


def test_folder_chunks_resume_only_for_the_same_job(tmp_path):
    sink = FolderSink(tmp_path / "out")
    assert sink.start(state(), resume=False) == {}
    sink.write_chunk(
        ChunkRecord("deal_scores", 0, 2, [{"deal_id": "D9", "error": "x"}]), rows(["D1", "D2"])
    )
    # a new sink object, as after a kill: the written chunk and its failed ids come back
    done = FolderSink(tmp_path / "out").start(state(), resume=True)
    assert (
        list(done) == [("deal_scores", 0)] and done["deal_scores", 0].failed[0]["deal_id"] == "D9"
    )
    assert not list((tmp_path / "out" / PARTIAL).glob(".*tmp*")), "no temporary file left"
    with pytest.raises(SpmMlError, match="changed: models"):
        FolderSink(tmp_path / "out").start(state(models={"deal-win": "2"}), resume=True)
    # without --resume an unfinished job is forgotten
    assert FolderSink(tmp_path / "out").start(state(), resume=False) == {}
    assert not list((tmp_path / "out" / PARTIAL).glob("deal_scores-*"))


def test_folder_commit_joins_chunks_in_order_and_writes_the_manifest_last(tmp_path):
    sink = FolderSink(tmp_path / "out")
    sink.start(state(), resume=False)
    records = [ChunkRecord("deal_scores", 1, 1), ChunkRecord("deal_scores", 0, 2)]
    sink.write_chunk(records[0], rows(["D3"]))
    sink.write_chunk(records[1], rows(["D1", "D2"]))
    (tmp_path / "out" / "rep_risk.parquet").write_bytes(b"an earlier run's")
    sink.commit(records, {"as_of": AS_OF.isoformat()})
    got = pd.read_parquet(tmp_path / "out" / "deal_scores.parquet")
    assert list(got["deal_id"]) == ["D1", "D2", "D3"]
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["as_of"] == AS_OF.isoformat()
    assert not (tmp_path / "out" / PARTIAL).exists()
    assert not (tmp_path / "out" / "rep_risk.parquet").exists(), "not this run's output"


def test_sql_rerun_for_the_same_as_of_replaces_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'out.db'}"
    for probability in (0.25, 0.75):  # two complete runs of the same as-of
        sink = SqlSink(url)
        sink.start(state(), resume=False)
        records = [ChunkRecord("deal_scores", 0, 2), ChunkRecord("deal_scores", 1, 1)]
        sink.write_chunk(records[0], rows(["D1", "D2"], probability))
        sink.write_chunk(records[1], rows(["D3"], probability))
        sink.commit(records, {"run": probability})
    got = read_table(url, "deal_scores")
    assert sorted(got["deal_id"]) == ["D1", "D2", "D3"]
    assert set(got["probability"]) == {0.75}
    runs = read_table(url, "batch_runs")
    assert len(runs) == 1 and json.loads(runs["manifest"].iat[0]) == {"run": 0.75}
    assert read_table(url, "spm_batch_staging_deal_scores").empty, "staging cleared"
    assert read_table(url, "spm_batch_chunks").empty


def test_sql_chunks_stay_staged_until_the_commit_and_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'out.db'}"
    sink = SqlSink(url)
    sink.start(state(), resume=False)
    sink.write_chunk(ChunkRecord("deal_scores", 0, 2), rows(["D1", "D2"]))
    assert read_table(url, "deal_scores").empty, "readers see no half run"
    done = SqlSink(url).start(state(), resume=True)
    assert list(done) == [("deal_scores", 0)]
    with pytest.raises(SpmMlError, match="changed: inputs"):
        SqlSink(url).start(state(inputs="other"), resume=True)


def test_sql_table_with_other_columns_is_refused_by_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'out.db'}"
    sink = SqlSink(url)
    sink.start(state(), resume=False)
    sink.write_chunk(ChunkRecord("deal_scores", 0, 1), rows(["D1"]))
    with pytest.raises(SpmMlError, match="unexpected: note"):
        sink.write_chunk(ChunkRecord("deal_scores", 1, 1), rows(["D2"]).drop(columns="note"))
