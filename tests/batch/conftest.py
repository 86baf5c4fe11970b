"""Fixtures of the batch tests that run the job on the shared trained work folder."""

from __future__ import annotations

import pandas as pd
import pytest

from spm_ml import settings
from spm_ml.data.io import load_tables


@pytest.fixture(scope="module")
def work(trained_workdir):
    return trained_workdir


@pytest.fixture(scope="module")
def as_of(work) -> pd.Timestamp:
    """Inside the last quota period (the simulated data ends exactly at its close), so rep
    quota risk and the forecast are written too."""
    quotas = load_tables(settings.data_source(work)).quotas
    return quotas["period_start"].max() + pd.Timedelta(days=45)
