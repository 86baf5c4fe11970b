"""The email-score cache: reused only for the same email, text and model; never fatal.

Two simulated organisations share email ids (``E00000000``, ...) but not texts, so a cache
keyed by id alone hands one organisation the other's scores.  Every check compares with a
fresh scoring (``score_emails``, no cache) of the same emails.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spm_ml.data.simulate import SimulationConfig, simulate
from spm_ml.data.tables import Tables
from spm_ml.features.email_signals import SENTIMENT_COLUMNS
from spm_ml.nlp import sentiment_fingerprint
from spm_ml.nlp.scoring import SentimentModel, pipeline_dir
from spm_ml.nlp.signals import (
    CACHE_COLUMNS,
    FINGERPRINT_ATTR,
    score_emails,
    with_email_scores,
)

MARKER = "QUOKKA-SECRET-5519"


@pytest.fixture(scope="module")
def orgs() -> tuple[Tables, Tables]:
    """Two small organisations; their first 400 emails are plenty and keep the test quick."""
    a, b = (
        org.replace(emails=org.emails.head(400))
        for org in (simulate(SimulationConfig(n_reps=4, months=3, seed=s)).tables for s in (1, 2))
    )
    shared = a.emails.merge(b.emails, on="email_id")
    # The premise: the same ids carry different texts in the two organisations.
    assert len(shared) == 400
    assert (shared["body_x"] != shared["body_y"]).mean() > 0.9
    return a, b


@pytest.fixture(scope="module")
def fresh(orgs, default_model) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of each organisation's emails without any cache."""
    return tuple(score_emails(org, default_model).emails for org in orgs)


def _scores(tables: Tables) -> np.ndarray:
    return tables.emails[list(SENTIMENT_COLUMNS)].to_numpy(dtype=float)


def _same(got: Tables, want: pd.DataFrame) -> bool:
    assert list(got.emails["email_id"]) == list(want["email_id"])
    return np.allclose(
        _scores(got), want[list(SENTIMENT_COLUMNS)].to_numpy(float), atol=1e-12, equal_nan=True
    )


class Counter:
    """A ``progress`` callback that records how many emails each call had to score."""

    def __init__(self) -> None:
        self.totals: list[int] = []

    def __call__(self, stage: str, done: int, total: int) -> None:
        if done == total:
            self.totals.append(total)

    @property
    def scored(self) -> int:
        return sum(self.totals)


def test_two_organisations_sharing_a_cache_get_their_own_scores(orgs, fresh, tmp_path):
    cache = tmp_path / "email_scores.parquet"
    a, b = orgs
    assert _same(with_email_scores(a, cache=cache), fresh[0])
    counter = Counter()
    assert _same(with_email_scores(b, cache=cache, progress=counter), fresh[1])
    assert counter.scored == len(b.emails)  # nothing of A's was reused for B
    # Both organisations' entries stay; running either again scores nothing.
    again = Counter()
    assert _same(with_email_scores(a, cache=cache, progress=again), fresh[0])
    assert _same(with_email_scores(b, cache=cache, progress=again), fresh[1])
    assert again.scored == 0
    assert len(pd.read_parquet(cache)) == len(a.emails) + len(b.emails)


def test_changed_text_rescores_just_that_email(orgs, fresh, tmp_path, default_model):
    cache = tmp_path / "email_scores.parquet"
    a = orgs[0]
    with_email_scores(a, cache=cache)
    emails = a.emails.copy()
    row = emails.index[emails["direction"] == "inbound"][3]
    emails.loc[row, "body"] = "We have decided to cancel. We are going with a competitor."
    edited = a.replace(emails=emails)
    counter = Counter()
    result = with_email_scores(edited, cache=cache, progress=counter)
    assert counter.totals == [1]
    assert _same(result, score_emails(edited, default_model).emails)
    position = emails.index.get_loc(row)
    assert result.emails["p_negative"].iloc[position] > 0.5  # the new text's score, not the old
    others = np.arange(len(emails)) != position
    assert np.allclose(
        _scores(result)[others], fresh[0][list(SENTIMENT_COLUMNS)].to_numpy()[others]
    )


def test_another_model_rescores_everything(orgs, tmp_path, default_model):
    cache = tmp_path / "email_scores.parquet"
    a = orgs[0]
    with_email_scores(a, cache=cache)
    # A "retrained" model: the default pipeline with different blend weights.
    other = SentimentModel.load(pipeline_dir(default_model_folder()))
    other.blend.set_weights(other.blend.coef_ * 0.5, other.blend.intercept_)
    assert other.fingerprint != default_model.fingerprint
    counter = Counter()
    result = with_email_scores(a, cache=cache, model=other, progress=counter)
    assert counter.scored == len(a.emails)
    assert result.emails.attrs[FINGERPRINT_ATTR] == other.fingerprint
    assert _same(result, score_emails(a, other).emails)
    assert set(pd.read_parquet(cache)["model"]) == {default_model.fingerprint, other.fingerprint}


def default_model_folder() -> Path:
    from spm_ml.nlp.default_model import ensure_default_model

    return ensure_default_model()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00PAR1 not a parquet file \xff\xfe" * 50)


def _old_layout(path: Path) -> None:
    # What the cache looked like when it was keyed by email id only.
    frame = pd.read_parquet(path)[["email_id", *SENTIMENT_COLUMNS]]
    frame.assign(p_negative=0.99).to_parquet(path, index=False)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _old_layout])
def test_a_damaged_cache_is_rebuilt_with_a_warning(orgs, fresh, tmp_path, caplog, damage):
    cache = tmp_path / "email_scores.parquet"
    a = orgs[0]
    with_email_scores(a, cache=cache)
    damage(cache)
    caplog.set_level(logging.WARNING, logger="spm_ml.nlp.signals")
    counter = Counter()
    assert _same(with_email_scores(a, cache=cache, progress=counter), fresh[0])
    assert counter.scored == len(a.emails)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(cache) in warnings[0].getMessage()
    # Rebuilt: readable again, and the next run uses it without a warning.
    assert list(pd.read_parquet(cache).columns) == list(CACHE_COLUMNS)
    caplog.clear()
    again = Counter()
    assert _same(with_email_scores(a, cache=cache, progress=again), fresh[0])
    assert again.scored == 0 and not caplog.records


def test_cache_is_replaced_atomically(orgs, tmp_path, monkeypatch):
    """A write that fails midway leaves the previous cache intact and no stray files."""
    cache = tmp_path / "email_scores.parquet"
    a, b = orgs
    with_email_scores(a, cache=cache)
    before = cache.read_bytes()

    def fail_midway(self, handle, **kwargs):
        handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        with_email_scores(b, cache=cache)
    assert cache.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".email_scores.parquet.lock",
        "email_scores.parquet",
    ]


def test_cache_holds_no_text(orgs, tmp_path):
    a = orgs[0]
    emails = a.emails.copy()
    inbound = emails.index[emails["direction"] == "inbound"][:5]
    emails.loc[inbound, "body"] = f"Internal project {MARKER}. " + emails.loc[inbound, "body"]
    emails.loc[inbound[:2], "subject"] = f"Re: {MARKER}"
    cache = tmp_path / "email_scores.parquet"
    result = with_email_scores(a.replace(emails=emails), cache=cache)
    assert "body" not in result.emails.columns and "subject" not in result.emails.columns
    assert MARKER.encode() not in cache.read_bytes()
    assert list(pd.read_parquet(cache).columns) == list(CACHE_COLUMNS)


def test_already_scored_emails_lose_their_text_and_keep_their_scores(orgs, fresh):
    a = orgs[0]
    emails = a.emails.copy()
    for column in SENTIMENT_COLUMNS:
        emails[column] = fresh[0][column].to_numpy()
    result = with_email_scores(a.replace(emails=emails), cache=None)
    assert "body" not in result.emails.columns and "subject" not in result.emails.columns
    assert _same(result, fresh[0])


def test_fingerprint_is_stable_across_save_load_and_processes(default_model, tmp_path):
    fingerprint = sentiment_fingerprint()
    assert fingerprint == default_model.fingerprint
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    assert SentimentModel.load(default_model.save(tmp_path / "copy")).fingerprint == fingerprint
    # Another interpreter (its own hash seed) computes the same value.
    code = "from spm_ml.nlp import sentiment_fingerprint; print(sentiment_fingerprint())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == fingerprint


def test_scored_tables_name_their_model(orgs, default_model):
    result = with_email_scores(orgs[0])
    assert result.emails.attrs[FINGERPRINT_ATTR] == default_model.fingerprint
    assert score_emails(orgs[0]).emails.attrs[FINGERPRINT_ATTR] == default_model.fingerprint


def test_rewritten_cache_keeps_its_file_mode(orgs, tmp_path):
    cache = tmp_path / "email_scores.parquet"
    with_email_scores(orgs[0], cache=cache)
    assert cache.stat().st_mode & 0o777 == 0o644
    cache.chmod(0o640)
    with_email_scores(orgs[1], cache=cache)
    assert cache.stat().st_mode & 0o777 == 0o640
