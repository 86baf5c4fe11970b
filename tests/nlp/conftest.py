"""Fixtures for the sentiment tests: one default model per session, in a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sentiment_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``SPM_ML_CACHE_DIR`` so tests never touch (or depend on) the user's cache."""
    cache = tmp_path_factory.mktemp("spm-ml-cache")
    previous = os.environ.get("SPM_ML_CACHE_DIR")
    os.environ["SPM_ML_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("SPM_ML_CACHE_DIR", None)
    else:
        os.environ["SPM_ML_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def default_model(sentiment_cache: Path):
    """The default model, built once from the shipped sentences into the private cache."""
    from spm_ml.nlp.default_model import load_default_model

    return load_default_model()
