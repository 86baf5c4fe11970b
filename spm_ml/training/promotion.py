"""The champion/challenger rule: a new model serves only once it has beaten the current one.

One rule for every family (the models' training records name it; its
:class:`~spm_ml.training.family.FamilySpec` builds the rows and scores them).  Both models
are scored on the *same* evaluation rows: snapshots of the given data dated after both
models' training cut-offs, up to the last date whose outcome window has passed, each model
building its features with the configuration it was trained with.  The
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

from spm_ml import registry
from spm_ml.data.tables import Tables
from spm_ml.errors import ModelNotFoundError
from spm_ml.models.metrics import binary_metrics
from spm_ml.training.families import family_spec

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
            f"train a new model first (spm-ml train {name})"
        )
    models = [registry.load_model(name, version=v) for v in (champion, challenger)]
    for loaded in models:
        if loaded.record is None:
            raise ModelNotFoundError(
                f"{name} version {loaded.version} carries no training record (logged by an "
                "older spm-ml); retrain it before comparing"
            )
    spec = family_spec(models[0].record.family)
    if models[1].record.family != spec.name:
        raise ModelNotFoundError(
            f"{name}'s champion is a {spec.name} model and its challenger a "
            f"{models[1].record.family} model: promotion compares models of one family"
        )
    records = [m.record for m in models]
    tables = spec.prepare_for(tables, records, workdir)
    evaluation = spec.evaluation_rows(tables, records, snapshot_every_days)
    rows, start, end = evaluation.rows, evaluation.start, evaluation.end
    y = rows[spec.label].to_numpy().astype(int)
    champion_metrics = binary_metrics(y, spec.score(models[0], tables, rows))
    challenger_metrics = binary_metrics(y, spec.score(models[1], tables, rows))
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
