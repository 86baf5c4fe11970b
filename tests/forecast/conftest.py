"""A small simulated organisation shared by the forecast tests (simulated once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spm_ml.data.tables import Tables


@pytest.fixture(scope="session")
def small_org() -> Tables:
    """12 reps over 12 months (quarters 2024Q1-Q4, extracted 2025-01-01)."""
    from spm_ml.data.simulate import SimulationConfig, simulate

    return simulate(SimulationConfig(n_reps=12, months=12, seed=3)).tables


@pytest.fixture(scope="session")
def small_org_dir(small_org, tmp_path_factory) -> Path:
    from spm_ml.data.io import write_tables

    folder = tmp_path_factory.mktemp("forecast-org")
    write_tables(small_org, folder, format="parquet")
    return folder
