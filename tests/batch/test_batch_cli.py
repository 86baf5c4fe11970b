"""``spm-ml batch`` refusals that need no model: each exits 2 with a message naming the
cause, and writes nothing to the target."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.data.io import write_tables

runner = CliRunner()


def test_bad_source_stops_before_anything_is_written(tiny, tmp_path):
    deals = tiny.deals.copy()
    deals.loc[1, "rep_id"] = "NOBODY"
    source = tmp_path / "org"
    write_tables(tiny.replace(deals=deals), source, format="csv")
    for target in (tmp_path / "out", f"sqlite:///{tmp_path / 'out.db'}"):
        result = batch(source, target, "--workdir", str(tmp_path))
        assert result.exit_code == 2, result.output
        assert "deals | row 2 (deal_id=D2) | rep_id | dangling_reference" in result.output
        assert "nothing was written" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.db").exists()


def batch(source, out, *options: str):
    # no MLflow URI of the user (an earlier test in this process may have left one)
    command = ["batch", "--data", str(source), "--out", str(out), *options]
    return runner.invoke(app, command, env={"MLFLOW_TRACKING_URI": None})


def test_a_work_folder_without_models_is_named(tiny_csv_dir, tmp_path):
    empty = tmp_path / "no-models"
    result = batch(tiny_csv_dir, tmp_path / "out", "--workdir", str(empty))
    assert result.exit_code == 2 and "no MLflow store in" in result.output
    assert not empty.exists() and not (tmp_path / "out").exists()


def test_an_unknown_engine_or_spark_without_pyspark_is_named(tiny_csv_dir, tmp_path, monkeypatch):
    unknown = batch(tiny_csv_dir, tmp_path / "out", "--engine", "dask")
    assert unknown.exit_code == 2 and "must be one of pandas, spark" in unknown.output
    stray = batch(tiny_csv_dir, tmp_path / "out", "--spark-master", "local[2]")
    assert stray.exit_code == 2 and "--spark-master is for --engine spark" in stray.output
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the [spark] extra were absent
    spark = batch(tiny_csv_dir, tmp_path / "out", "--engine", "spark")
    assert spark.exit_code == 2 and "pip install 'spm-ml[spark]'" in spark.output
    assert not (tmp_path / "out").exists()


def test_as_of_after_the_extraction_or_not_a_date_is_refused(tiny_csv_dir, tmp_path):
    late = batch(tiny_csv_dir, tmp_path / "out", "--as-of", "2030-01-01")
    assert late.exit_code == 2 and "after the data's extraction" in late.output
    bad = batch(tiny_csv_dir, tmp_path / "out", "--as-of", "someday")
    assert bad.exit_code == 2 and "not a date" in bad.output
    assert not (tmp_path / "out").exists()
