"""The email sentiment model in the MLflow registry: registered once by quickstart, reused
on re-runs, and holding no email text."""

from __future__ import annotations

from pathlib import Path

import mlflow.artifacts
import pandas as pd
import pytest
from mlflow import MlflowClient

from spm_ml import settings
from spm_ml.nlp.pyfunc import FINGERPRINT_TAG, SENTIMENT_MODEL_NAME

pytestmark = pytest.mark.slow


def test_quickstart_registered_the_sentiment_champion_without_email_text(trained_workdir, tmp_path):
    uri = settings.tracking_uri(trained_workdir)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias(SENTIMENT_MODEL_NAME, "champion")
    assert champion.tags[FINGERPRINT_TAG]
    from spm_ml.nlp.default_model import load_default_model

    assert champion.tags[FINGERPRINT_TAG] == load_default_model().fingerprint
    # the version's own artifact location: a models:/ URI would be resolved against the
    # process's global registry, which another test may have pointed elsewhere
    location = client.get_model_version_download_uri(SENTIMENT_MODEL_NAME, champion.version)
    folder = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(tmp_path), tracking_uri=uri
        )
    )
    blobs = [p.read_bytes() for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in folder.rglob("*"))
    emails = pd.read_parquet(trained_workdir / "data" / "emails.parquet")
    lines = {
        line.strip()
        for text in emails["body"].dropna().head(2000)
        for line in text.splitlines()
        if len(line.strip()) > 40
    }
    assert len(lines) > 50
    for line in lines:
        assert not any(line.encode() in blob for blob in blobs), line


def test_registering_the_same_model_again_reuses_its_version(trained_workdir):
    from spm_ml.quickstart import register_default_sentiment

    uri = settings.tracking_uri(trained_workdir)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    before = client.search_model_versions(f"name = '{SENTIMENT_MODEL_NAME}'")
    version = register_default_sentiment(trained_workdir)
    after = client.search_model_versions(f"name = '{SENTIMENT_MODEL_NAME}'")
    assert len(after) == len(before) and version in {str(v.version) for v in before}
