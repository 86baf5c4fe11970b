"""``--engine spark`` on the shared trained work folder (tests/conftest.py): the same rows as
the pandas engine (probabilities to 1e-9, everything else equal), and a pandas run cut short
finished by Spark with ``resume``.  One local SparkSession (``local[2]``) for the module."""

from __future__ import annotations

import math
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from spm_ml import settings
from spm_ml.batch.job import BatchOptions, run_batch
from spm_ml.batch.sinks import TABLE_KEYS

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark", reason="the [spark] extra is not installed: pip install '.[spark]'")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java 17: no java on the PATH, no JAVA_HOME", allow_module_level=True)

CHUNK = 50


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    try:
        session = (
            SparkSession.builder.master("local[2]")
            .appName("spm-ml tests")
            .config("spark.sql.shuffle.partitions", 4)
            .config("spark.ui.enabled", "false")
            .config("spark.pyspark.python", sys.executable)
            .getOrCreate()
        )
    except Exception as err:  # Java there but unusable: say why rather than fail every test
        pytest.skip(f"a local SparkSession would not start: {err}")
    yield session
    session.stop()


def batch(work, target, as_of, engine, progress=None, **options) -> dict:
    """The job by ``engine`` into ``target``, in chunks of ``CHUNK``; its manifest."""
    source = settings.data_source(work)
    job = BatchOptions(source, str(target), work, as_of, chunk_size=CHUNK, engine=engine, **options)
    return run_batch(job, progress).manifest


def read(out) -> dict[str, pd.DataFrame]:
    return {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLE_KEYS}


@pytest.fixture(scope="module")
def runs(work, as_of, spark, tmp_path_factory):
    """The same job by both engines, into two folders."""
    root = tmp_path_factory.mktemp("engines")
    manifests = {e: batch(work, root / e, as_of, e) for e in ("pandas", "spark")}
    return manifests, {e: read(root / e) for e in manifests}


def assert_same_rows(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    """Probabilities equal to 1e-9, every other value equal, same dtypes, same row order."""
    for table, key in TABLE_KEYS.items():
        mine, theirs = (f[table].sort_values(key).reset_index(drop=True) for f in (got, want))
        assert list(mine.columns) == list(theirs.columns), table
        assert mine.dtypes.to_dict() == theirs.dtypes.to_dict(), table
        assert len(mine) == len(theirs) > 0, table
        for name in mine.columns:
            if name in {"probability", "p_miss", "attrition_probability"}:
                np.testing.assert_allclose(mine[name], theirs[name], rtol=0, atol=1e-9)
            else:
                assert plain(mine[name]) == plain(theirs[name]), f"{table}.{name}"


def plain(column: pd.Series) -> list:
    """Values as comparable Python objects, every kind of missing as None."""
    out = []
    for value in column.tolist():
        if isinstance(value, np.generic):
            value = value.item()
        missing = value is None or value is pd.NA or value is pd.NaT
        out.append(None if missing or (isinstance(value, float) and math.isnan(value)) else value)
    return out


def test_spark_gives_the_pandas_rows(runs):
    manifests, frames = runs
    assert_same_rows(frames["spark"], frames["pandas"])
    pandas, spark = manifests["pandas"], manifests["spark"]
    assert spark["engine"] == "spark" and pandas["engine"] == "pandas"
    assert spark["rows"] == pandas["rows"] and spark["failed"] == pandas["failed"]
    assert spark["rows"]["deal_scores"] > 2 * CHUNK, "several chunks, spread over the workers"
    assert spark["chunks"]["written"] == pandas["chunks"]["written"]
    assert spark["fingerprint"] == pandas["fingerprint"], "either engine resumes the other"
    assert spark["forecast"] == pandas["forecast"] and spark["forecast"].startswith("written")
    assert "spark start" in spark["timings_s"] and "spark start" not in pandas["timings_s"]


class Interrupted(Exception):
    pass


def test_a_pandas_run_cut_short_is_finished_by_spark(work, as_of, runs, spark, tmp_path):
    """Chunks written by pandas are skipped; Spark writes the rest: the same rows."""

    def stop_after_two(stage, done, total):
        if stage == "deal chunks" and done == 2:
            raise Interrupted

    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        batch(work, out, as_of, "pandas", progress=stop_after_two)
    assert not (out / "manifest.json").exists()
    manifest = batch(work, out, as_of, "spark", resume=True)
    assert manifest["chunks"]["resumed"] == 2
    assert_same_rows(read(out), runs[1]["pandas"])
