"""Features from any flat export of closed deals: column typing, screening, frozen preprocessing.

A CRM export arrives as text.  Each column gets one *kind* and one *decision*, decided once
on the training file and frozen in :class:`TabularPreprocessor`, which the saved model
carries, so serving turns a row into features exactly as training did:

- **numeric**: numbers (text that parses as a number in >= 95% of filled cells; the rest
  become missing).  Used as is.
- **datetime**: text that parses as a date in >= 95% of filled cells, with the format frozen.
  The raw date is *not* a feature (every future row would lie outside the training range);
  it becomes month, weekday and days to the end of the quarter, plus the gap in days to
  every other used date column (e.g. created -> expected close).
- **category**: text with at most ``max(50, 5% of rows)`` distinct values.
- **text**: text with more distinct values than that: dropped (free text or a code).
- **id**: the ``--id-col``, or unique per row (text, or integers spanning about the row
  count), or named like an identifier with mostly distinct values: dropped.
- **constant** / **empty**: one value and never missing, or no value at all: dropped.

Outcome-leak screen (the target is known only at close; a column recorded at close is a
leak): a column that *alone* separates the classes (out-of-fold single-column ROC AUC
>= 0.95) is **excluded**, and so is a date named like the outcome (``close_date``,
``won_on``: stamped when the deal closes).  ``keep`` overrides both.  Names suggesting the
outcome (close, won, lost, stage, status, result, ...), a strong single column (AUC >= 0.80)
and a sizeable category that is ~100% one class are **warned about** and used.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from spm_ml.errors import SchemaError

CATEGORY_MAX_LEVELS = 50
"""A text column with at most this many distinct values is a category ..."""
CATEGORY_MAX_SHARE = 0.05
"""... or with fewer distinct values than this share of the rows."""
PARSE_SHARE = 0.95
"""Share of filled cells that must parse for a text column to be numeric or a date."""
LEAK_AUC_EXCLUDE = 0.95
"""Single-column ROC AUC at or above which a column is excluded as an outcome leak."""
LEAK_AUC_WARN = 0.80
"""Single-column ROC AUC at or above which a column is warned about."""
PURE_SHARE = 0.99
"""A category value this pure in one class (and common enough) is warned about."""

USED_KINDS = ("numeric", "category", "datetime")
OUTCOME_WORDS = frozenset(
    [
        "close",
        "closed",
        "closing",
        "won",
        "win",
        "wins",
        "lost",
        "loss",
        "lose",
        "stage",
        "result",
        "results",
        "outcome",
        "status",
        "converted",
        "conversion",
        "churn",
        "churned",
        "decision",
    ]
)
OUTCOME_DATE_WORDS = frozenset(
    ["close", "closed", "closing", "won", "win", "lost", "loss", "outcome", "result", "decision"]
)
BEFORE_CLOSE_WORDS = frozenset(
    [
        "expected",
        "forecast",
        "forecasted",
        "planned",
        "plan",
        "target",
        "estimated",
        "est",
        "predicted",
        "projected",
    ]
)
ID_WORDS = frozenset(["id", "ids", "uuid", "guid", "key"])
ID_NUMBER_WORDS = frozenset(["number", "num", "no", "nr", "code"])
ID_MOSTLY_UNIQUE = 0.9
"""An integer column named like an id is one when at least this share of rows is distinct."""


@dataclass
class ColumnDecision:
    """What happens to one column of the export, and why (printed, logged to MLflow)."""

    column: str
    kind: str
    used: bool
    reason: str
    warning: str = ""
    auc: float | None = None
    date_format: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# -- pure helpers ------------------------------------------------------------------------------
def name_tokens(name: str) -> list[str]:
    """Lower-case words of a column name: ``"CloseDate"`` and ``"close_date"`` -> close, date."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", str(name))
    return [w.lower() for w in words]


def outcome_name_hint(name: str) -> str | None:
    """The word in ``name`` that suggests the outcome (``stage``, ``won``, ...), if any."""
    tokens = name_tokens(name)
    if set(tokens) & BEFORE_CLOSE_WORDS:
        return None
    return next((t for t in tokens if t in OUTCOME_WORDS), None)


def parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers from a column of text or numbers; what does not parse becomes missing."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    text = values.astype("object").where(values.notna())
    text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def guess_date_format(values: pd.Series) -> tuple[str | None, float]:
    """The strftime format under which most of ``values`` parse, and that share (0..1)."""
    from pandas.tseries.api import guess_datetime_format

    text = values.dropna().astype(str).str.strip()
    if text.empty:
        return None, 0.0
    sample = text.drop_duplicates().head(500)
    candidates: list[str] = []
    for value in sample.head(25):
        for dayfirst in (False, True):
            with warnings.catch_warnings():  # "dayfirst=True but %m/%d/%Y": we try both
                warnings.simplefilter("ignore", UserWarning)
                fmt = guess_datetime_format(value, dayfirst=dayfirst)
            if fmt and fmt not in candidates:
                candidates.append(fmt)
    best, best_share = None, 0.0
    for fmt in candidates:
        share = float(pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean())
        if share > best_share:
            best, best_share = fmt, share
    return best, best_share


def parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    """Dates under the frozen ``date_format`` (naive); what does not parse becomes missing."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = pd.to_datetime(values)
    else:
        text = values.astype("object").where(values.notna())
        text = text.map(lambda v: str(v).strip() if v is not None and not pd.isna(v) else None)
        fmt = date_format or "mixed"
        out = pd.to_datetime(text, format=fmt, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def infer_kind(values: pd.Series) -> tuple[str, str, str | None]:
    """``(kind, detail, date_format)`` of one column; see the module docstring for kinds."""
    filled = values.dropna()
    if pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
        filled = filled[filled.astype(str).str.strip() != ""]
    n_missing = len(values) - len(filled)
    if filled.empty:
        return "empty", "no values", None
    distinct = filled.astype(str).nunique()
    if distinct == 1 and n_missing == 0:
        return "constant", f"one value ({str(filled.iloc[0])[:30]!r})", None
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime", "dates", None
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return "numeric", "numbers", None
    numbers = parse_numbers(filled)
    if numbers.notna().mean() >= PARSE_SHARE:
        bad = int(numbers.isna().sum())
        return "numeric", "numbers" + (f" ({bad} unparsable -> missing)" if bad else ""), None
    fmt, share = guess_date_format(filled)
    if fmt is not None and share >= PARSE_SHARE:
        return "datetime", f"dates ({fmt})", fmt
    cap = max(CATEGORY_MAX_LEVELS, int(CATEGORY_MAX_SHARE * len(values)))
    if distinct <= cap:
        return "category", f"{distinct} values", None
    return "text", f"{distinct:,} distinct values (> {cap}): too many for a category", None


def id_reason(values: pd.Series, name: str, kind: str) -> str | None:
    """Why ``values`` look like a row identifier, or ``None``."""
    filled = values.dropna()
    n = len(values)
    if n < 20 or filled.empty or kind not in ("numeric", "category", "text"):
        return None
    distinct = filled.astype(str).nunique()
    unique_per_row = distinct == n
    tokens = set(name_tokens(name))
    if kind == "numeric":
        numbers = parse_numbers(filled)
        integers = bool(np.all(np.isclose(numbers.dropna(), np.round(numbers.dropna()))))
        named_like_id = bool(tokens & (ID_WORDS | ID_NUMBER_WORDS))
        if integers and named_like_id and not unique_per_row and distinct >= ID_MOSTLY_UNIQUE * n:
            # a few repeats (a deal exported twice, a reused number) do not make it a measure
            return f"id: integer named like an identifier, {distinct / n:.0%} of values distinct"
        if not (unique_per_row and integers):
            return None
        if named_like_id:
            return "id: integer, unique per row, named like an identifier"
        span = float(numbers.max() - numbers.min()) + 1
        if span <= 2 * n:
            return "id: integers unique per row, spanning about the row count (a row number)"
        return None
    if unique_per_row:
        return "id: unique per row"
    if tokens & ID_WORDS and distinct >= 0.5 * n:
        return f"id: named like an identifier, {distinct / n:.0%} of values distinct"
    return None


def single_column_auc(values: pd.Series, kind: str, y: np.ndarray, seed: int = 0) -> float:
    """How well this column alone separates the classes: out-of-fold ROC AUC, in [0.5, 1].

    Numbers and dates rank rows directly (missing placed first or last, whichever separates
    better, so "filled only when won" counts); categories are replaced by their win rate
    learned on the other folds, so a many-valued category cannot memorise the labels.
    """
    y = np.asarray(y, dtype=int)
    if kind == "category":
        score = _out_of_fold_rate(_category_text(values), y, seed)
        return _two_sided_auc(y, score)
    x = parse_dates(values, None) if kind == "datetime" else parse_numbers(values)
    x = x.astype("int64").where(x.notna()) if kind == "datetime" else x
    x = pd.to_numeric(x, errors="coerce").astype("float64")
    if x.isna().all():
        return 0.5
    low, high = x.min(), x.max()
    return max(
        _two_sided_auc(y, x.fillna(low - 1).to_numpy()),
        _two_sided_auc(y, x.fillna(high + 1).to_numpy()),
    )


def pure_values(values: pd.Series, y: np.ndarray, labels: tuple[str, str]) -> str | None:
    """A warning naming a common category value whose rows are ~100% one class, or ``None``."""
    y = np.asarray(y, dtype=int)
    text = _category_text(values)
    frame = pd.DataFrame({"v": text.to_numpy(), "y": y})
    stats = frame.groupby("v")["y"].agg(["size", "mean"])
    floor = max(20, int(0.02 * len(y)))
    common = stats[stats["size"] >= floor]
    pure = common[(common["mean"] >= PURE_SHARE) | (common["mean"] <= 1 - PURE_SHARE)]
    if pure.empty:
        return None
    value, row = next(iter(pure.iterrows()))
    label = labels[1] if row["mean"] >= PURE_SHARE else labels[0]
    share = row["mean"] if row["mean"] >= PURE_SHARE else 1 - row["mean"]
    return f"value {str(value)[:30]!r} ({int(row['size'])} rows) is {share:.0%} {label}"


def screen_columns(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    target: str,
    labels: tuple[str, str] = ("negative", "positive"),
    id_cols: tuple[str, ...] = (),
    keep_cols: tuple[str, ...] = (),
    drop_cols: tuple[str, ...] = (),
    seed: int = 0,
    exclude_protected: bool = False,
) -> list[ColumnDecision]:
    """One :class:`ColumnDecision` per column of ``frame``, in column order.

    ``y`` is the 0/1 outcome of each row (for the leak screen); ``labels`` name its classes
    in messages.  ``keep_cols`` overrides the leak and name-based id exclusions;
    ``drop_cols`` excludes by hand.  ``exclude_protected`` (models about people) drops every
    column named like a protected attribute (:mod:`spm_ml.features.protected`), which
    ``keep_cols`` cannot override.
    """
    from spm_ml.features.protected import protected_ground

    named = set(id_cols) | set(keep_cols) | set(drop_cols)
    unknown = sorted(c for c in named if c not in frame.columns)
    if unknown:
        raise SchemaError(
            f"column(s) {', '.join(map(repr, unknown))} given to --id-col/--keep-col/--drop-col "
            f"are not in the file; available: {', '.join(map(str, frame.columns))}"
        )
    grounds = {c: protected_ground(c) for c in frame.columns} if exclude_protected else {}
    kept_protected = [c for c in keep_cols if grounds.get(c)]
    if kept_protected:
        raise SchemaError(
            f"--keep-col {', '.join(map(repr, kept_protected))}: a protected attribute "
            f"({', '.join(str(grounds[c]) for c in kept_protected)}) is never a feature of a "
            "model about people"
        )
    decisions = []
    for column in frame.columns:
        values = frame[column]
        if column == target:
            decisions.append(ColumnDecision(column, "target", False, "the outcome"))
            continue
        kind, detail, fmt = infer_kind(values)
        decision = ColumnDecision(column, kind, kind in USED_KINDS, detail, date_format=fmt)
        decisions.append(decision)
        if grounds.get(column):
            decision.used = False
            decision.reason = (
                f"protected attribute ({grounds[column]}): never a feature of a model about people"
            )
            continue
        if column in drop_cols:
            decision.used, decision.reason = False, "--drop-col"
            continue
        if column in id_cols:
            decision.kind, decision.used, decision.reason = "id", False, "id: --id-col"
            continue
        why_id = id_reason(values, column, kind)
        if why_id and not (column in keep_cols and kind in USED_KINDS):
            decision.kind, decision.used, decision.reason = "id", False, why_id
            continue
        if not decision.used:
            continue
        _screen_leak(decision, values, y, labels, column in keep_cols, seed)
    _screen_joint_leak(frame, y, decisions, keep_cols, seed)
    return decisions


def _screen_joint_leak(
    frame: pd.DataFrame,
    y: np.ndarray,
    decisions: list[ColumnDecision],
    keep_cols: tuple[str, ...],
    seed: int,
) -> None:
    """Exclude a group of used numeric columns that separates the outcome only together
    (:mod:`spm_ml.features.joint_leaks`), naming each column, why, and the two AUCs."""
    from spm_ml.features.joint_leaks import MIN_GROUP, find_joint_leak, flag_cycle_measures

    numeric = [d.column for d in decisions if d.used and d.kind == "numeric"]
    if len(numeric) < MIN_GROUP:
        return
    numbers = pd.DataFrame({c: parse_numbers(frame[c]) for c in numeric})
    words = {c: set(name_tokens(c)) for c in numeric}
    flagged = flag_cycle_measures(numbers, words, keep_cols)
    if len(flagged) < MIN_GROUP:
        return
    others = preprocessor_for([d for d in decisions if d.used and d.column not in flagged])
    features = others.fit(frame).transform(frame)
    features = features.astype({c: "category" for c in others.categorical})
    leak = find_joint_leak(numbers, flagged, features, y, seed)
    if leak is None:
        return
    for decision in decisions:
        if decision.column in leak.columns:
            decision.used, decision.reason = False, leak.message(decision.column)


@dataclass(frozen=True)
class LeakScreen:
    """What the outcome-leak screen finds about one column (see the module docstring)."""

    auc: float
    """Out-of-fold single-column ROC AUC against the outcome, in [0.5, 1]."""
    separates: str | None
    """Why the column alone separates the outcome (AUC >= ``LEAK_AUC_EXCLUDE``), or None."""
    outcome_date: str | None
    """Why a date column is stamped at close (named like the outcome), or None."""
    warnings: tuple[str, ...]
    """Weaker signs (outcome-like name, strong single column, pure category value)."""

    @property
    def leaks(self) -> tuple[str, ...]:
        """Reasons the column is an outcome leak; empty when it is not one."""
        return tuple(r for r in (self.separates, self.outcome_date) if r)


def leak_screen(
    column: str,
    values: pd.Series,
    kind: str,
    y: np.ndarray,
    labels: tuple[str, str] = ("negative", "positive"),
    seed: int = 0,
) -> LeakScreen:
    """Screen one used column (``kind`` numeric, category or datetime) against the 0/1 ``y``.

    The same test for every caller: the flat-export trainer (through :func:`screen_columns`)
    and the opted-in custom fields of the deal features.
    """
    auc = single_column_auc(values, kind, y, seed)
    separates = None
    if auc >= LEAK_AUC_EXCLUDE:
        separates = f"alone separates the outcome (AUC {auc:.3f}): a value recorded at close?"
    tokens = set(name_tokens(column))
    outcome_date = None
    if kind == "datetime" and tokens & OUTCOME_DATE_WORDS and not tokens & BEFORE_CLOSE_WORDS:
        outcome_date = "a date named like the outcome is stamped when the deal closes"
    warnings = []
    hint = outcome_name_hint(column)
    if hint:
        warnings.append(f"name suggests the outcome ({hint!r}): check it is known before close")
    if LEAK_AUC_WARN <= auc < LEAK_AUC_EXCLUDE:
        warnings.append(f"strong alone (AUC {auc:.3f}): check it is not recorded at close")
    if kind == "category":
        pure = pure_values(values, y, labels)
        if pure:
            warnings.append(pure + ": check it is not recorded at close")
    return LeakScreen(float(auc), separates, outcome_date, tuple(warnings))


def _screen_leak(
    decision: ColumnDecision,
    values: pd.Series,
    y: np.ndarray,
    labels: tuple[str, str],
    keep: bool,
    seed: int,
) -> None:
    column = decision.column
    screen = leak_screen(column, values, decision.kind, y, labels, seed)
    decision.auc = round(screen.auc, 4)
    warnings = []
    if screen.separates:
        if keep:
            warnings.append(screen.separates + " kept (--keep-col)")
        else:
            decision.used = False
            decision.reason = f"leak: {screen.separates} --keep-col {column} to use it"
            return
    if screen.outcome_date:
        if keep:
            warnings.append(screen.outcome_date + "; kept (--keep-col)")
        else:
            decision.used = False
            decision.reason = f"leak: {screen.outcome_date}; --keep-col {column} to use it"
            return
    warnings += screen.warnings
    decision.warning = "; ".join(warnings)
    if decision.kind == "datetime":
        decision.reason += " -> month, weekday, days to quarter end (+ gaps between used dates)"


def _category_text(values: pd.Series) -> pd.Series:
    text = values.astype("object").where(values.notna())
    return text.map(lambda v: "<missing>" if v is None or pd.isna(v) else str(v).strip())


def _out_of_fold_rate(codes: pd.Series, y: np.ndarray, seed: int) -> np.ndarray:
    prior = float(y.mean())
    score = np.full(len(y), prior)
    minority = int(min(y.sum(), len(y) - y.sum()))
    folds = StratifiedKFold(n_splits=max(2, min(5, minority)), shuffle=True, random_state=seed)
    codes = codes.to_numpy()
    for fit, held in folds.split(codes, y):
        stats = pd.DataFrame({"v": codes[fit], "y": y[fit]}).groupby("v")["y"].agg(["sum", "size"])
        rate = (stats["sum"] + prior) / (stats["size"] + 1)
        score[held] = pd.Series(codes[held]).map(rate).fillna(prior).to_numpy()
    return score


def _two_sided_auc(y: np.ndarray, score: np.ndarray) -> float:
    if y.min() == y.max():
        return 0.5
    auc = float(roc_auc_score(y, score))
    return max(auc, 1 - auc)


# -- the fitted preprocessor ---------------------------------------------------------------------
class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """Turns rows of the export into model features with the decisions frozen at fit time.

    Parameters
    ----------
    numeric, categorical, datetime:
        Raw column names of each used kind (from :func:`screen_columns`).
    date_formats:
        Optional ``{column: strftime format}`` found while screening; formats not given are
        guessed in ``fit`` from the training values.

    Examples
    --------
    >>> prep = TabularPreprocessor(numeric=("amount",), categorical=("region",))
    >>> prep.fit(train).transform(new_rows)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        datetime: tuple[str, ...] = (),
        date_formats: dict[str, str] | None = None,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.datetime = datetime
        self.date_formats = date_formats

    def fit(self, X: pd.DataFrame, y=None) -> TabularPreprocessor:
        self.input_columns_ = [*self.numeric, *self.categorical, *self.datetime]
        self._check_columns(X)
        given = dict(self.date_formats or {})
        self.date_formats_ = {c: given.get(c) or guess_date_format(X[c])[0] for c in self.datetime}
        self.categorical_features_ = tuple(self.categorical)
        self.feature_names_out_ = list(self.transform(X.head(1)).columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "date_formats_")
        self._check_columns(X)
        out: dict[str, pd.Series] = {}
        for column in self.numeric:
            out[column] = parse_numbers(X[column])
        for column in self.categorical:
            text = X[column].astype("object").where(X[column].notna())
            out[column] = text.map(clean_text).astype("object")
        dates = {c: parse_dates(X[c], self.date_formats_[c]) for c in self.datetime}
        for column, when in dates.items():
            out[f"{column}__month"] = when.dt.month.astype("float64")
            out[f"{column}__weekday"] = when.dt.weekday.astype("float64")
            quarter_end = when.dt.to_period("Q").dt.end_time.dt.normalize()
            out[f"{column}__days_to_quarter_end"] = (
                quarter_end - when.dt.normalize()
            ).dt.days.astype("float64")
        names = list(dates)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                gap = (dates[second] - dates[first]).dt.total_seconds() / 86400.0
                out[f"{second}__days_after__{first}"] = gap.astype("float64")
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def _check_columns(self, X: pd.DataFrame) -> None:
        missing = [c for c in self.input_columns_ if c not in X.columns]
        if missing:
            raise SchemaError(
                f"input lacks {len(missing)} column(s) the model was trained on: "
                f"{', '.join(map(str, missing[:20]))}"
                + (" ..." if len(missing) > 20 else "")
                + "; pass rows of the same export (extra columns are ignored)"
            )


def clean_text(value: object) -> object:
    """A category value as stripped text; blanks and missing values become ``None``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def preprocessor_for(decisions: list[ColumnDecision]) -> TabularPreprocessor:
    """An unfitted :class:`TabularPreprocessor` for the used columns of ``decisions``."""
    used = [d for d in decisions if d.used]
    return TabularPreprocessor(
        numeric=tuple(d.column for d in used if d.kind == "numeric"),
        categorical=tuple(d.column for d in used if d.kind == "category"),
        datetime=tuple(d.column for d in used if d.kind == "datetime"),
        date_formats={d.column: d.date_format for d in used if d.date_format},
    )
