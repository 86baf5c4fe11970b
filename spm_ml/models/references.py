"""The simple references trained beside every model, so each run shows what the model adds.

- :class:`PriorModel` predicts the training win rate for everyone: any model that cannot
  beat it has learned nothing.
- :func:`logistic_reference` is a regularised logistic regression on the same features
  (one-hot categories, median-imputed and scaled numbers with missing-value indicators).
- :class:`DefaultLGBM` is ``lightgbm.LGBMClassifier()`` with its default settings on the
  same inputs: what the model's tuning, early stopping and calibration add to the library.
- :class:`OdooNaiveBayes` is the method of Odoo's predictive lead scoring, the one
  open-source CRM that ships a trained win probability: what a team gets out of the box.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from spm_ml.data.schema import OPEN_STAGES


class PriorModel(ClassifierMixin, BaseEstimator):
    """Predicts the positive rate seen in training for every row."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> PriorModel:
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])


class _TextCategories(BaseEstimator):
    """Categorical columns as plain strings with a marker for missing (OneHotEncoder input)."""

    def fit(self, X: pd.DataFrame, y=None) -> _TextCategories:
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X).astype("object")
        return frame.where(frame.notna(), "<missing>").astype(str).to_numpy()


def logistic_reference(
    categorical: list[str], numeric: list[str], *, C: float = 1.0, seed: int = 0
) -> Pipeline:
    """A regularised logistic regression with inverse regularisation strength ``C``."""
    numeric_steps = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    categorical_steps = make_pipeline(
        _TextCategories(),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
    )
    features = ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", categorical_steps, categorical)],
        sparse_threshold=0.0,
    )
    model = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    return Pipeline([("features", features), ("model", model)])


LOGISTIC_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""The one grid of inverse regularisation strengths every logistic regression in spm-ml is
tuned over (the deal-win reference, the flat-export learner): half-decade steps, so a
model's lead over its reference never comes from a coarser grid."""


def tuned_logistic_reference(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    categorical: tuple[str, ...],
    *,
    Cs: tuple[float, ...] = LOGISTIC_CS,
    seed: int = 0,
) -> tuple[Pipeline, float]:
    """Choose ``C`` by log loss on the (later) validation fold, then refit on fit + valid.

    The reference gets the same time-respecting tuning data as the model, so the gap between
    them is the model's, not the tuning's.
    """
    cats, nums = split_columns(X_fit, categorical)
    # encode once, then try each C on the same matrices
    encoder = logistic_reference(cats, nums, seed=seed).named_steps["features"].fit(X_fit)
    A_fit, A_valid = encoder.transform(X_fit), encoder.transform(X_valid)
    losses = {}
    for C in Cs:
        candidate = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(A_fit, y_fit)
        losses[C] = log_loss(y_valid, candidate.predict_proba(A_valid)[:, 1], labels=[0, 1])
    best = min(losses, key=losses.get)
    X_all = pd.concat([X_fit, X_valid])
    y_all = np.concatenate([np.asarray(y_fit), np.asarray(y_valid)])
    return logistic_reference(cats, nums, C=best, seed=seed).fit(X_all, y_all), best


def split_columns(X: pd.DataFrame, categorical: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(categorical, numeric) column lists for ``X`` given the model's categorical features."""
    cats = [c for c in X.columns if c in categorical]
    nums = [c for c in X.columns if c not in categorical]
    return cats, nums


class DefaultLGBM(ClassifierMixin, BaseEstimator):
    """``lightgbm.LGBMClassifier()`` with default settings, on the model's own inputs.

    Only what a plain call needs is done here: the ``categorical`` columns become pandas
    categories with the categories frozen from the training rows (an unseen value becomes
    missing rather than another category's code), the other columns floats; LightGBM then
    treats the category columns as categorical, as it does by default.  ``random_state`` and
    ``n_jobs`` make runs reproducible; nothing else is set (``verbose=-1`` only silences it).
    """

    def __init__(
        self, categorical: tuple[str, ...] = (), *, random_state: int = 0, n_jobs: int = 2
    ) -> None:
        self.categorical = categorical
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> DefaultLGBM:
        import lightgbm as lgb

        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.categories_ = {
            c: sorted(X[c].dropna().astype(str).unique().tolist())
            for c in self.categorical
            if c in X.columns
        }
        self.model_ = lgb.LGBMClassifier(
            random_state=self.random_state, n_jobs=self.n_jobs, verbose=-1
        ).fit(self._frame(X), np.asarray(y).astype(int))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.predict_proba(self._frame(X))

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        columns = {}
        for c in self.feature_names_in_:
            if c in self.categories_:
                text = X[c].astype("string")
                known = text.where(text.isin(self.categories_[c]))  # unseen -> missing
                columns[c] = pd.Categorical(known, categories=self.categories_[c])
            else:
                columns[c] = pd.to_numeric(X[c], errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(columns, index=X.index)


ODOO_SMOOTHING = 0.1
"""Odoo adds 0.1 to every won and lost count it creates ("should be +1 but it weights too
much on small recordset"), so no frequency is ever zero."""
ODOO_BOUNDS = (0.0001, 0.9999)
"""Odoo rounds the probability to 0.01% and clamps it to [0.01%, 99.99%]."""
ODOO_FIELDS = ("product", "account_industry", "account_region", "rep_team")
"""Categorical fields scored beside the stage.  Odoo always uses the stage and the sales team,
and optionally country, state, phone and email quality, source, language and tags; our
analogues are the team, the account's region (country/state), its industry and the product
(a single-valued tag).  Odoo has no amount or activity field in its scoring."""
_ALL_TEAMS = "\x00all teams"
_NO_TEAM = "\x00no team"
_STAGE = "\x00stage"


class OdooNaiveBayes(ClassifierMixin, BaseEstimator):
    """Odoo's predictive lead scoring (``addons/crm``, ``crm.lead._pls_*``) on deal features.

    The maths, as Odoo implements it:

    - **Learning** builds a frequency table: for each field and value, how many won and how
      many lost leads had it, each count starting at 0.1.  For the stage, a won lead counts
      as won in *every* stage and a lost lead as lost in its stage and every earlier one, so
      the stage's frequency is "reached this stage".  The table is kept per sales team (the
      ``team_column``); a lead whose team has no table uses the sum over all teams.
    - **Scoring** multiplies the won and lost priors (the first stage's won and lost counts
      over their sum) by, for each field whose value is in the table, the value's won count
      over the field's total won count (for the stage: over the team's won count, since every
      lead counts in several stages), and the same for lost; values never seen, or unset,
      are skipped.  The probability is ``won / (won + lost)``, rounded to 0.01% and clamped
      to 0.01%-99.99%.  A lead with no stage scores 0.

    Where ours necessarily differs:

    - the stage is ``stage_column`` (``stage_rank``: 0 for prospecting ... 4 for
      negotiation, at ``as_of``), and "reached" means a rank at or below it;
    - Odoo learns from each closed lead once, with its values at close, and scores open leads
      with their current values.  Fitting this estimator on one row per closed deal (its
      last snapshot, labelled with its outcome; see :func:`closed_deal_rows`) reproduces
      that; fitting it on snapshots labelled "won within H days" is the same maths on our
      label, with each deal counted once per week it was open;
    - fields are our categorical features (:data:`ODOO_FIELDS`), not Odoo's lead fields;
      Odoo's rule that a tag seen on fewer than 50 closed leads is ignored has no analogue
      (we have no multi-valued tags);
    - the table is rebuilt by ``fit``, not incremented live as leads close.

    The fitted table is ``frequencies_`` (columns ``team``, ``variable``, ``value``, ``won``,
    ``lost``), Odoo's ``crm.lead.scoring.frequency``.
    """

    def __init__(
        self,
        fields: tuple[str, ...] = ODOO_FIELDS,
        *,
        stage_column: str = "stage_rank",
        n_stages: int = len(OPEN_STAGES),
        team_column: str | None = "rep_team",
    ) -> None:
        self.fields = fields
        self.stage_column = stage_column
        self.n_stages = n_stages
        self.team_column = team_column

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> OdooNaiveBayes:
        won = np.asarray(y).astype(int) == 1
        teams = self._teams(X)
        parts = []
        for variable, values in self._values(X):
            frame = pd.DataFrame({"team": teams, "value": values, "won": won, "lost": ~won})
            parts.append(
                frame.dropna(subset=["value"])
                .groupby(["team", "value"], sort=True)[["won", "lost"]]
                .sum()
                .reset_index()
                .assign(variable=variable)
            )
        rank = pd.to_numeric(X[self.stage_column], errors="coerce").to_numpy(dtype="float64")
        staged = ~np.isnan(rank)
        for stage in range(self.n_stages):
            # won: every stage; lost: the stages up to the one it was lost in
            reached = staged & (won | (rank >= stage))
            frame = pd.DataFrame(
                {"team": teams[reached], "won": won[reached], "lost": ~won[reached]}
            )
            counts = frame.groupby("team", sort=True)[["won", "lost"]].sum().reset_index()
            parts.append(counts.assign(variable=_STAGE, value=str(stage)))
        table = pd.concat(parts, ignore_index=True)
        # a record exists once a lead has incremented it; then it starts at 0.1
        table = table[(table["won"] + table["lost"]) > 0]
        table = table.astype({"won": "float64", "lost": "float64"})
        table[["won", "lost"]] += ODOO_SMOOTHING
        self.frequencies_ = table[["team", "variable", "value", "won", "lost"]].reset_index(
            drop=True
        )
        # a team without a first-stage count has no prior; Odoo leaves such a lead's
        # probability as it was, we score it with the all-teams table
        first_stage = table[(table["variable"] == _STAGE) & (table["value"] == "0")]
        self.teams_ = tuple(t for t in first_stage["team"] if t != _NO_TEAM)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        by_team = self.frequencies_[self.frequencies_["team"] != _NO_TEAM]
        everyone = (
            self.frequencies_.groupby(["variable", "value"], sort=False)[["won", "lost"]]
            .sum()
            .reset_index()
            .assign(team=_ALL_TEAMS)
        )
        table = pd.concat([by_team, everyone], ignore_index=True)
        counts = table.set_index(["team", "variable", "value"])[["won", "lost"]]
        totals = table.groupby(["team", "variable"])[["won", "lost"]].sum()
        priors = counts.xs((_STAGE, "0"), level=("variable", "value"))

        team = self._teams(X)
        team = np.where(np.isin(team, list(self.teams_)), team, _ALL_TEAMS)
        prior = priors.reindex(team)
        team_won, team_lost = prior["won"].to_numpy(), prior["lost"].to_numpy()
        score_won = team_won / (team_won + team_lost)
        score_lost = team_lost / (team_won + team_lost)
        has_stage = np.zeros(len(X), dtype=bool)
        for variable, values in self._values(X, with_stage=True):
            key = pd.MultiIndex.from_arrays([team, np.full(len(X), variable), values])
            found = counts.reindex(key)
            if variable == _STAGE:
                has_stage = pd.notna(values)
                total_won, total_lost = team_won, team_lost
            else:
                total = totals.reindex(pd.MultiIndex.from_arrays([team, np.full(len(X), variable)]))
                total_won, total_lost = total["won"].to_numpy(), total["lost"].to_numpy()
            seen = found["won"].notna().to_numpy()
            score_won = np.where(seen, score_won * found["won"].to_numpy() / total_won, score_won)
            score_lost = np.where(
                seen, score_lost * found["lost"].to_numpy() / total_lost, score_lost
            )
        p = np.round(100 * score_won / (score_won + score_lost), 2) / 100
        p = np.clip(p, *ODOO_BOUNDS)
        p = np.where(has_stage, p, 0.0)
        return np.column_stack([1 - p, p])

    def _teams(self, X: pd.DataFrame) -> np.ndarray:
        if self.team_column is None:
            return np.full(len(X), _NO_TEAM, dtype=object)
        teams = X[self.team_column].astype("object")
        return teams.where(teams.notna(), _NO_TEAM).astype(str).to_numpy(dtype=object)

    def _values(
        self, X: pd.DataFrame, *, with_stage: bool = False
    ) -> Iterator[tuple[str, np.ndarray]]:
        """(variable, values as text or None when unset) for each field (and the stage)."""
        for field in self.fields:
            values = X[field].astype("object")
            yield (
                field,
                values.where(values.notna(), None)
                .map(lambda v: None if v is None else str(v))
                .to_numpy(dtype=object),
            )
        if with_stage:
            rank = pd.to_numeric(X[self.stage_column], errors="coerce")
            text = rank.map(lambda v: None if pd.isna(v) else str(int(v)))
            yield _STAGE, text.to_numpy(dtype=object)


def closed_deal_rows(
    snapshots: pd.DataFrame, rows: np.ndarray, deals: pd.DataFrame, before: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """Odoo's learning set: each deal closed won or lost before ``before``, once.

    Returns the positions (among ``rows`` of ``snapshots``) of each such deal's last
    snapshot, whose features are its values at close, and its outcome (1 won, 0 lost).
    ``deals`` is the contract's deals table (``deal_id``, ``closed_at``, ``outcome``).
    """
    closed = deals[(deals["closed_at"] < before) & deals["outcome"].isin(["won", "lost"])]
    outcome = closed.set_index("deal_id")["outcome"]
    candidates = snapshots.iloc[rows][["deal_id", "as_of"]].assign(position=rows)
    candidates = candidates[candidates["deal_id"].isin(outcome.index)]
    last = candidates.sort_values(["deal_id", "as_of"]).groupby("deal_id", sort=False).tail(1)
    positions = np.sort(last["position"].to_numpy())
    won = snapshots["deal_id"].iloc[positions].map(outcome).eq("won").astype(int).to_numpy()
    return positions, won
