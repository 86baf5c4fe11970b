"""The champion/challenger rule: a new model serves only once it has beaten the current one.

Both models are scored on the *same* evaluation rows: snapshots of the given data dated
after both models' training cut-offs, up to the last date whose outcome window has passed,
each model building its features with the configuration it was trained with.  The
challenger is promoted when its ROC AUC is higher and its Brier score is no worse;
otherwise the champion stays.  Either way the decision, with the
figures, who asked and when, is recorded as tags on the model versions.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.features.context import DealContext
from spm_ml.features.deals import DealFeatureConfig, deal_features
from spm_ml.features.snapshots import LabelDefinition, deal_snapshots, extraction_time
from spm_ml.models.deal_win import custom_fields_of, feature_config_of, model_inputs
from spm_ml.models.metrics import binary_metrics
from spm_ml.models.record import TrainingRecord
from spm_ml.registry import LoadedModel
from spm_ml.training.deal_win import prepare_tables

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


def evaluation_rows(
    tables: Tables, records: list[TrainingRecord], every_days: int = 7
) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp]:
    """Snapshots after every model's training cut-off whose outcome window has passed.

    Judging a model on rows it trained on flatters it; so both models are scored only on
    snapshots dated from the later of their cut-offs to the extraction time minus the
    horizon, where every open deal has a known label.
    """
    horizons = {r.horizon_days for r in records}
    if len(horizons) != 1:
        raise ModelNotFoundError(
            f"the models predict different things (label horizons {sorted(horizons)} days); "
            "promotion compares models of the same label only"
        )
    label = LabelDefinition(horizon_days=horizons.pop())
    start = max(r.training_cutoff for r in records)
    end = extraction_time(tables) - pd.Timedelta(days=label.horizon_days)
    snapshots = deal_snapshots(tables, every_days=every_days, label=label)
    rows = snapshots[(snapshots["as_of"] >= start) & (snapshots["as_of"] <= end)]
    if rows.empty:
        raise ModelNotFoundError(
            f"no evaluation data: promotion needs snapshots after both models' training "
            f"cut-off ({start.date()}) whose {label.horizon_days}-day outcome window has passed "
            f"by the data's extraction ({end.date()} at the latest); pass newer data with --data"
        )
    return rows.reset_index(drop=True), start, end


def evaluate_version(loaded: LoadedModel, tables: Tables, rows: pd.DataFrame) -> dict[str, float]:
    """A version's metrics on ``rows``, its features built with its own configuration."""
    config = feature_config_of(loaded.record)
    context = DealContext.build(tables, config, custom_fields=custom_fields_of(loaded.record))
    X = model_inputs(deal_features(tables, rows, config, context))
    return binary_metrics(rows["won"].to_numpy().astype(int), loaded.model.predict_proba(X)[:, 1])


def promote(
    name: str,
    tables: Tables,
    *,
    workdir: Path,
    by: str | None = None,
    note: str = "",
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
    models = [registry.load_model(name, version=v) for v in (champion, challenger)]
    for loaded in models:
        if loaded.record is None:
            raise ModelNotFoundError(
                f"{name} version {loaded.version} carries no training record (logged by an "
                "older spm-ml); retrain it before comparing"
            )
    uses_sentiment = any(m.record.feature_config.get("email_sentiment") for m in models)
    tables, _ = prepare_tables(tables, DealFeatureConfig(email_sentiment=uses_sentiment), workdir)
    rows, start, end = evaluation_rows(tables, [m.record for m in models], snapshot_every_days)
    y = rows["won"].to_numpy()
    champion_metrics = evaluate_version(models[0], tables, rows)
    challenger_metrics = evaluate_version(models[1], tables, rows)
    promoted = challenger_beats_champion(challenger_metrics, champion_metrics)
    reason = (
        f"challenger v{challenger} ROC AUC {challenger_metrics['roc_auc']:.4f} / Brier "
        f"{challenger_metrics['brier']:.4f} vs champion v{champion} ROC AUC "
        f"{champion_metrics['roc_auc']:.4f} / Brier {champion_metrics['brier']:.4f} on "
        f"{len(y):,} snapshots from {start.date()} to {end.date()}, after both models' "
        "training cut-offs" + (f"; note: {note}" if note else "")
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
