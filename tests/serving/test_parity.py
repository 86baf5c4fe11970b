"""The API scores what the batch job scored: same probability and drivers, to 1e-9.

The batch output is the quickstart's own ``outputs/deal_scores.parquet`` (every deal open at
extraction, scored by ``DealScorer.score_open_deals`` over the whole organisation).  The
live service must give the same numbers for those deals, asked two ways: by id (its rows
cut from the service's context) and posted with the deal's full history, activities and
emails (its email tone as the derived scores).  Requests are sent concurrently, so they are
scored in shared batches.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest

from spm_ml import settings
from spm_ml.data.io import load_tables
from spm_ml.nlp.signals import with_email_scores

pytestmark = pytest.mark.slow
N_DEALS = 200


@pytest.fixture(scope="module")
def batch(trained_workdir) -> pd.DataFrame:
    scores = pd.read_parquet(trained_workdir / "outputs" / "deal_scores.parquet")
    assert len(scores) >= N_DEALS, "the shared organisation has too few open deals"
    return scores.sort_values("deal_id").head(N_DEALS).set_index("deal_id")


@pytest.fixture(scope="module")
def tables(trained_workdir):
    work = trained_workdir
    return with_email_scores(
        load_tables(settings.data_source(work)), cache=settings.email_scores_path(work)
    )


def posted_body(tables, deal_id: str, as_of: str) -> dict:
    """The deal as a client would post it: its row, full history and events, no text."""
    deal = tables.deals[tables.deals["deal_id"] == deal_id].iloc[0]

    def records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
        rows = frame[frame["deal_id"] == deal_id][[c for c in columns if c in frame]]
        out = []
        for row in rows.to_dict("records"):
            clean = {k: v for k, v in row.items() if not (v is None or v != v)}
            out.append(
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in clean.items()}
            )
        return out

    return {
        "deal": {
            "deal_id": deal_id,
            "rep_id": deal["rep_id"],
            "account_id": deal["account_id"],
            "product": deal["product"],
            "amount": float(deal["amount"]),
            "created_at": deal["created_at"].isoformat(),
            "expected_close_at": deal["expected_close_at"].isoformat(),
            "stage": deal["stage"],
        },
        "as_of": as_of,
        "history": records(tables.deal_history, ["changed_at", "field", "old_value", "new_value"]),
        "activities": records(
            tables.activities, ["type", "occurred_at", "duration_min", "contact_id"]
        ),
        "emails": records(
            tables.emails,
            ["direction", "sent_at", "contact_id", "p_negative", "p_neutral", "p_positive"],
        ),
        "top_k": 3,
    }


def score_all(api: httpx.Client, bodies: list[dict]) -> list[dict]:
    """Half the deals one per request, concurrently (micro-batched), half in lists of 25."""
    half = len(bodies) // 2
    singles = [{"deals": [b]} for b in bodies[:half]]
    lists = [{"deals": bodies[i : i + 25]} for i in range(half, len(bodies), 25)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(lambda b: api.post("/v1/deals/score", json=b, timeout=60), singles + lists)
        )
    for response in responses:
        assert response.status_code == 200, response.text
    results = [item for r in responses for item in r.json()["results"]]
    assert [r["status"] for r in results] == [200] * len(bodies)
    return results


def assert_same_as_batch(answers: list[dict], batch: pd.DataFrame) -> None:
    got = pd.DataFrame(answers).set_index("deal_id").loc[batch.index]
    np.testing.assert_allclose(got["probability"], batch["probability"], rtol=0, atol=1e-9)
    for deal_id, drivers in got["drivers"].items():
        expected = json.loads(batch.at[deal_id, "drivers_json"])
        assert [d["feature"] for d in drivers] == [d["feature"] for d in expected], deal_id
        np.testing.assert_allclose(
            [d["shap"] for d in drivers], [d["shap"] for d in expected], rtol=0, atol=1e-9
        )


def test_scores_by_id_equal_the_batch_scores(api, batch, tables):
    as_of = tables.extracted_at.isoformat()
    answers = score_all(api, [{"deal_id": d, "as_of": as_of} for d in batch.index])
    assert_same_as_batch(answers, batch)


def test_posted_deals_with_their_history_equal_the_batch_scores(api, batch, tables):
    as_of = tables.extracted_at.isoformat()
    answers = score_all(api, [posted_body(tables, d, as_of) for d in batch.index])
    assert_same_as_batch(answers, batch)
