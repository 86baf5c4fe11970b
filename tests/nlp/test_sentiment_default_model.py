"""The default model: built on first use into the cache, once, atomically, deterministically."""

from __future__ import annotations

import threading

from spm_ml.nlp.default_model import default_model_dir, ensure_default_model


def test_default_model_lives_in_the_cache_with_a_fingerprint(default_model, sentiment_cache):
    path = ensure_default_model()
    assert path == default_model_dir()
    assert path.is_relative_to(sentiment_cache)
    assert (path / "MLmodel").is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".sentiment-")]


def test_concurrent_first_use_builds_once(default_model):
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_default_model())) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1


def test_rebuild_is_deterministic(default_model, tmp_path, monkeypatch):
    from spm_ml.nlp import score_texts
    from spm_ml.nlp.corpus import labelled_sentences
    from spm_ml.nlp.training import fit_pipeline

    texts, labels, groups = labelled_sentences()
    again = fit_pipeline(texts, labels, groups=groups)
    probe = ["We will not renew.", "Great demo!", "Send me the invoice please."]
    a = score_texts(probe, model=default_model)
    b = score_texts(probe, model=again)
    assert (a[["p_negative", "p_neutral", "p_positive"]] - b[["p_negative", "p_neutral",
            "p_positive"]]).abs().to_numpy().max() < 1e-6  # fmt: skip
