"""Scoring every open deal of an organisation into a file: the first batch output."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spm_ml.scoring import DealScorer, flatten_drivers


def score_open_deals_to_file(
    scorer: DealScorer,
    out: Path,
    *,
    as_of: pd.Timestamp | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """Score deals open at ``as_of`` (default: the data's extraction time) into ``out``.

    The format follows the extension (``.parquet`` or ``.csv``).  Rows carry the deal,
    its rep, amount and stage as of scoring, the win probability and the top drivers.
    """
    when = as_of or scorer.tables.extracted_at or pd.Timestamp.now(tz="UTC").tz_localize(None)
    scored = flatten_drivers(scorer.score_open_deals(when, top_k), top_k)
    scored = scored.sort_values("probability", ascending=False, kind="stable")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        scored.to_csv(out, index=False)
    else:
        scored.to_parquet(out, index=False)
    return scored
