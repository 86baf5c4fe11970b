"""The champion/challenger rule: a new model serves only once it has beaten the current one.

Both models are scored on the *same* evaluation rows: the held-out (latest) fold of a time
split of the given data.  The challenger is promoted when its ROC AUC is higher and its
Brier score is no worse; otherwise the champion stays.  Either way the decision, with the
figures, who asked and when, is recorded as tags on the model versions.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import deal_snapshots
from spm_ml.models.deal_win import model_inputs
from spm_ml.models.metrics import binary_metrics
from spm_ml.training.deal_win import prepare_tables
from spm_ml.training.split import time_split

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    champion_version: str
    challenger_version: str
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    n_eval: int
    reason: str


def challenger_beats_champion(challenger: dict[str, float], champion: dict[str, float]) -> bool:
    """The rule: strictly higher ROC AUC and a Brier score no worse."""
    return challenger["roc_auc"] > champion["roc_auc"] and challenger["brier"] <= champion["brier"]


def evaluate_version(name: str, version: str, X, y) -> dict[str, float]:
    import mlflow

    from spm_ml.models.pyfunc import unwrap

    model = unwrap(mlflow.pyfunc.load_model(f"models:/{name}/{version}"))
    return binary_metrics(y, model.predict_proba(X)[:, 1])


def promote(
    name: str,
    tables: Tables,
    *,
    workdir: Path,
    by: str | None = None,
    note: str = "",
    test_fraction: float = 0.25,
    snapshot_every_days: int = 7,
) -> PromotionDecision:
    """Compare ``name@challenger`` with ``name@champion`` on ``tables`` and act on the rule.

    The registry must already be selected (:func:`spm_ml.registry.use_local_store`).
    """
    from mlflow import MlflowClient

    champion = registry.alias_version(name, registry.CHAMPION)
    challenger = registry.alias_version(name, registry.CHALLENGER)
    if champion is None:
        raise ModelNotFoundError(f"{name} has no champion yet; train a model first")
    if challenger is None or challenger == champion:
        raise ModelNotFoundError(
            f"{name} has no challenger distinct from the champion (version {champion}); "
            "train a new model first (spm-ml train deal-win)"
        )
    tables = prepare_tables(tables, DealFeatureConfig(), workdir)
    snapshots = deal_snapshots(tables, every_days=snapshot_every_days)
    split = time_split(snapshots["as_of"], snapshots["closed_at"], test_fraction=test_fraction)
    features = deal_features(tables, snapshots.iloc[split.test].reset_index(drop=True))
    X = model_inputs(features)
    y = snapshots["won"].to_numpy()[split.test]
    champion_metrics = evaluate_version(name, champion, X, y)
    challenger_metrics = evaluate_version(name, challenger, X, y)
    promoted = challenger_beats_champion(challenger_metrics, champion_metrics)
    reason = (
        f"challenger v{challenger} ROC AUC {challenger_metrics['roc_auc']:.4f} / Brier "
        f"{challenger_metrics['brier']:.4f} vs champion v{champion} ROC AUC "
        f"{champion_metrics['roc_auc']:.4f} / Brier {champion_metrics['brier']:.4f} on "
        f"{len(y):,} snapshots from {split.test_start.date()}" + (f"; note: {note}" if note else "")
    )
    who = by or getpass.getuser()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    client = MlflowClient()
    verdict = "promoted" if promoted else "rejected"
    for key, value in {
        "promotion_decision": verdict,
        "promotion_decided_by": who,
        "promotion_decided_at": when,
        "promotion_reason": reason,
    }.items():
        client.set_model_version_tag(name, challenger, key, value)
    if promoted:
        client.set_registered_model_alias(name, registry.CHAMPION, challenger)
        client.delete_registered_model_alias(name, registry.CHALLENGER)
        client.set_model_version_tag(name, champion, "replaced_by", f"v{challenger} at {when}")
    logger.info("%s: %s", verdict, reason)
    return PromotionDecision(
        promoted=promoted,
        champion_version=champion,
        challenger_version=challenger,
        champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics,
        n_eval=int(len(y)),
        reason=reason,
    )
