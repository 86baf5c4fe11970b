"""The data-quality report printed for valid data: what is there, how complete, which dates."""

from __future__ import annotations

import pandas as pd

from spm_ml.data.schema import TABLES
from spm_ml.data.tables import Tables


def quality_report(tables: Tables) -> pd.DataFrame:
    """One row per table: row count, extra columns, worst missing rates and event date range.

    Missing rates are over the contract's nullable columns and the extras, the places where
    gaps are allowed and therefore worth watching.
    """
    rows = []
    for name, frame in tables.items():
        schema = TABLES[name]
        extras = [c for c in frame.columns if c not in schema.column_names]
        missing = frame.isna().mean() if len(frame) else pd.Series(dtype=float)
        worst = missing[missing > 0].sort_values(ascending=False).head(3)
        time = schema.event_time
        first = frame[time].min() if time and len(frame) else pd.NaT
        last = frame[time].max() if time and len(frame) else pd.NaT
        rows.append(
            {
                "table": name,
                "rows": len(frame),
                "extras": len(extras),
                "most missing": ", ".join(f"{c} {v:.0%}" for c, v in worst.items()) or "-",
                "dated by": time or "-",
                "first": "-" if pd.isna(first) else str(first.date()),
                "last": "-" if pd.isna(last) else str(last.date()),
            }
        )
    return pd.DataFrame(rows)
