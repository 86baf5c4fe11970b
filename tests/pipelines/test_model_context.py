"""A model carries its own context: re-runs reuse it, promotion judges after its cut-off."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_ml.errors import ModelNotFoundError
from spm_ml.models.record import TrainingRecord
from spm_ml.training.deal_win import deal_win_evaluation_rows as evaluation_rows


def record(test_start: str, horizon_days: int = 180) -> TrainingRecord:
    return TrainingRecord(
        family="deal-win",
        feature_config={},
        label={"definition": "won", "horizon_days": horizon_days},
        cutoffs={"test_start": test_start},
        sentiment_model=None,
        data_digest="d",
        recipe_digest="r",
    )


def test_promotion_refuses_without_rows_after_both_cutoffs(tiny):
    # the tiny organisation ends 2024-06-01: nothing after a 2024-05 cut-off has a passed
    # 180-day window, so there is nothing fair to judge on
    with pytest.raises(ModelNotFoundError, match="no evaluation data"):
        evaluation_rows(tiny, [record("2024-01-01"), record("2024-05-01")])


def test_promotion_refuses_models_of_different_labels(tiny):
    with pytest.raises(ModelNotFoundError, match="different things"):
        evaluation_rows(tiny, [record("2024-01-01", 90), record("2024-01-01", 180)])


def test_promotion_rows_start_at_the_later_cutoff(tiny):
    evaluation = evaluation_rows(
        tiny, [record("2024-01-01", 30), record("2024-02-01", 30)], every_days=1
    )
    rows, start, end = evaluation.rows, evaluation.start, evaluation.end
    assert start == pd.Timestamp("2024-02-01")
    assert rows["as_of"].min() >= start and rows["as_of"].max() <= end
    assert rows["won"].notna().all()


@pytest.mark.slow
def test_a_quickstart_rerun_on_identical_data_registers_no_new_version(trained_workdir):
    from mlflow import MlflowClient

    from spm_ml import registry
    from spm_ml.quickstart import run_quickstart

    result = run_quickstart(trained_workdir, reps=20, months=12, seed=0)
    assert result.run.reused
    assert all(run.reused for run in result.rep_runs.values())  # quota risk too
    assert result.scored_by_version == result.run.model_version == "1"
    registry.use_local_store(trained_workdir)
    versions = MlflowClient().search_model_versions("name = 'deal-win'")
    assert [str(v.version) for v in versions] == ["1"]


def test_every_family_is_found_by_the_name_its_records_carry():
    from spm_ml.training.deal_win import DEAL_WIN
    from spm_ml.training.families import family_spec

    assert family_spec("deal-win") is DEAL_WIN
    with pytest.raises(
        ModelNotFoundError,
        match="unknown model family 'nope'; known: attrition, deal-win, quota-risk",
    ):
        family_spec("nope")
