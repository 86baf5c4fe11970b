"""Deal signals from the tone of the buyer's emails, as of a moment.

Sales emails tell how a deal is going before the CRM stage moves.  The emails table may
carry derived sentiment columns ``p_negative``, ``p_neutral``, ``p_positive`` (added by
:func:`spm_ml.nlp.signals.score_emails`, which keeps scores, never bodies); this block turns
the *inbound* ones dated before each snapshot into features.  Like every block, it asks the
shared :class:`~spm_ml.features.asof.EventIndex`, so it cannot see an email sent at or after
``as_of``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_ml.data.tables import Tables
from spm_ml.features.asof import column, days_between, equal_to, take, values_of
from spm_ml.features.deal_events import DealEvents

SENTIMENT_COLUMNS = ("p_negative", "p_neutral", "p_positive")
RECENT_DAYS = 14
TREND_BASELINE_DAYS = 30
POSITIVE = "positive"
NEGATIVE = "negative"


def has_sentiment(tables: Tables) -> bool:
    """Whether the emails table carries derived sentiment scores."""
    return all(c in tables.emails.columns for c in SENTIMENT_COLUMNS)


def email_sentiment_features(
    tables: Tables, snapshots: pd.DataFrame, events: DealEvents | None = None
) -> dict[str, np.ndarray]:
    """Tone of inbound emails before ``as_of``: recent shares, trend, recency, latest tone.

    - ``inbound_negative_share_{14,30}d`` / ``inbound_positive_share_{14,30}d``: share of
      inbound emails in the window whose most likely class is negative / positive;
    - ``inbound_tone_trend``: mean tone (p_positive - p_negative) of inbound emails in the
      last 14 days minus that of the 30 days before them (NaN when either window is empty);
    - ``days_since_positive_inbound``: days since the last inbound email read as positive;
    - ``latest_inbound_tone``: tone of the most recent inbound email.
    """
    emails = tables.emails
    inbound = equal_to(values_of(emails, "direction"), "inbound")
    # emails without score columns (a request that posted none) count as unscored
    probabilities = _probabilities(emails)
    scored = inbound & ~np.isnan(probabilities).any(axis=1)
    most_likely = np.nan_to_num(probabilities).argmax(1)  # 0 negative, 1 neutral, 2 positive
    is_negative, is_positive = most_likely == 0, most_likely == 2
    tone = probabilities[:, 2] - probabilities[:, 0]

    index = (events or DealEvents.of(tables, snapshots)).emails.subset(scored)
    as_of = snapshots["as_of"]
    query = index.query(snapshots["deal_id"], as_of)
    out: dict[str, np.ndarray] = {}
    for window in (RECENT_DAYS, 30):
        n = index.count(query, window_days=window)
        for name, is_class in (("negative", is_negative), ("positive", is_positive)):
            hits = index.count(query, window_days=window, mask=is_class)
            out[f"inbound_{name}_share_{window}d"] = _ratio(hits, n)

    span = RECENT_DAYS + TREND_BASELINE_DAYS
    recent_n = index.count(query, window_days=RECENT_DAYS)
    wide_n = index.count(query, window_days=span)
    recent_sum, wide_sum = index.sums(query, tone, (RECENT_DAYS, span))
    recent_tone = _ratio(recent_sum, recent_n)
    baseline_tone = _ratio(wide_sum - recent_sum, wide_n - recent_n)
    out["inbound_tone_trend"] = recent_tone - baseline_tone

    sent_at = column(emails, "sent_at")
    last_positive = index.last(query, mask=is_positive)
    out["days_since_positive_inbound"] = days_between(as_of, take(sent_at, last_positive))
    out["latest_inbound_tone"] = take(tone, index.last(query)).astype(float)
    return out


def _probabilities(emails: pd.DataFrame) -> np.ndarray:
    """The three class probabilities as an (n, 3) float array, NaN where not scored."""
    columns = [
        _floats(emails, c) if c in emails.columns else np.full(len(emails), np.nan)
        for c in SENTIMENT_COLUMNS
    ]
    return np.column_stack(columns) if len(emails) else np.zeros((0, 3))


def _floats(emails: pd.DataFrame, name: str) -> np.ndarray:
    """A score column as float64, NaN where missing (a request's rows: its attached array)."""
    values = column(emails, name)
    if values.dtype == np.float64:
        return values
    return emails[name].to_numpy(dtype="float64", na_value=np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)
