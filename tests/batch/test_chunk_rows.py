"""A chunk scored from its own rows and the organisation's indexes (what a Spark worker
receives) gives exactly the rows the whole scorer gives, and the workers' scorer is a
fraction of the whole: at a million deals the whole pickled to about 10 GB."""

from __future__ import annotations

import pickle

import pandas as pd

from spm_ml import registry, settings
from spm_ml.batch.deal_chunks import score_deal_chunk
from spm_ml.data.io import load_tables
from spm_ml.features.deals import open_deals_at
from spm_ml.models.deal_win import feature_config_of
from spm_ml.scoring import DealScorer
from spm_ml.training.deal_win import prepare_tables


def test_a_chunk_from_its_own_rows_scores_as_the_whole(work, as_of):
    registry.use_local_store(work)
    loaded = registry.load_model("deal-win", alias=registry.CHAMPION)
    tables = load_tables(settings.data_source(work))
    prepared, _ = prepare_tables(tables, feature_config_of(loaded.record), work)
    scorer = DealScorer.for_model(loaded, prepared)
    open_now = open_deals_at(prepared, as_of).sort_values("deal_id").reset_index(drop=True)
    chunk = open_now.iloc[:40].reset_index(drop=True)
    assert len(chunk) == 40

    whole, whole_failed = score_deal_chunk(scorer, chunk, top_k=3, model_version="1")
    workers = pickle.loads(pickle.dumps(scorer.for_workers()))  # as the broadcast sends it
    rows = pickle.loads(pickle.dumps(scorer.chunk_rows(chunk)))
    assert len(rows.deals) == len(chunk) < len(prepared.deals)
    own, own_failed = score_deal_chunk(workers.over(rows), chunk, top_k=3, model_version="1")

    assert own_failed == whole_failed
    assert whole["probability_before"].notna().any()  # the 14-days-earlier score is there
    pd.testing.assert_frame_equal(own, whole, check_exact=True)
    assert len(pickle.dumps(scorer.for_workers())) < 0.5 * len(pickle.dumps(scorer))
