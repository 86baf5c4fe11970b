"""The models one service worker serves, loaded together and swapped as a whole.

A :class:`ModelSet` holds the ``champion`` of every family (``deal-win``, ``quota-risk``,
``attrition``: the batch job's :data:`~spm_ml.batch.job.FAMILIES`) and of
the email sentiment model (``email-sentiment``, registered by ``spm-ml quickstart``; the
built-in default model when the registry has none), plus what scoring needs beside them:
the deal scorer over the organisation's context and the label of the deal model.  A family
without a champion is listed in :attr:`ModelSet.missing` with what to run; its endpoints
answer 503 with that message.

A set never changes after it is built.  :func:`load_model_set` builds a new one from the
registry's current champions, reusing from the previous set whatever did not change (a model
of the same version, the deal context when the feature configuration is the same), so the
service can build it in the background and swap one reference: requests in flight finish
on the set they started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from spm_ml import registry
from spm_ml.batch.job import FAMILIES
from spm_ml.nlp.pyfunc import SENTIMENT_MODEL_NAME

if TYPE_CHECKING:
    from spm_ml.data.tables import Tables
    from spm_ml.nlp.scoring import SentimentModel
    from spm_ml.registry import LoadedModel
    from spm_ml.scoring import DealScorer

logger = logging.getLogger(__name__)

DEFAULT_SENTIMENT_VERSION = "default"
"""The version a response names when the built-in sentiment model served it."""

WHAT_TO_RUN = {
    "deal-win": "spm-ml train deal-win (or spm-ml quickstart)",
    "quota-risk": "spm-ml train quota-risk (or spm-ml quickstart)",
    "attrition": "spm-ml train attrition (or spm-ml quickstart)",
}


@dataclass(frozen=True)
class ModelSet:
    """Every model a worker serves, at one moment of the registry (see the module doc)."""

    models: dict[str, LoadedModel | None]
    """Each family's champion, ``None`` where there is none."""
    missing: dict[str, str]
    """Families without a champion, and what to run to get one."""
    sentiment: SentimentModel
    """The ``email-sentiment`` champion (or the built-in default model)."""
    sentiment_version: str
    tables: Tables
    """The organisation's tables (emails carrying tone scores, no text)."""
    scorer: DealScorer | None = None
    """The deal-win champion over the organisation's context (``None`` without one)."""
    deal_sentiment: SentimentModel | None = None
    """The sentiment model the deal model's email tone came from (``None``: reads none)."""
    label: str = "won"
    loaded_at: float = field(default=0.0, compare=False)

    def versions(self) -> dict[str, str]:
        """``{model name: version}`` of everything served (for logs and ``/admin/reload``)."""
        served = {name: m.version for name, m in self.models.items() if m is not None}
        return {**served, SENTIMENT_MODEL_NAME: self.sentiment_version}

    def same_as(self, versions: dict[str, str | None]) -> bool:
        """Whether this set serves ``versions`` (the registry's champions) already; a
        champion the registry lost keeps being served, so it counts as the same."""
        served = self.versions()
        return all(v is None or served.get(name) == v for name, v in versions.items())

    def version(self, name: str) -> str:
        return self.versions()[name]

    def unavailable(self, *families: str) -> str | None:
        """Why an endpoint needing ``families`` cannot answer, or ``None`` when it can."""
        gone = [f for f in families if self.models.get(f) is None]
        if not gone:
            return None
        return "; ".join(
            f"no {f} champion is loaded: run {WHAT_TO_RUN[f]}, then POST /admin/reload"
            for f in gone
        )


def registry_versions(workdir: Path) -> dict[str, str | None]:
    """The champion version of every model in the registry now (one query each)."""
    registry.use_local_store(workdir)
    names = (*FAMILIES, SENTIMENT_MODEL_NAME)
    return {name: registry.alias_version(name, registry.CHAMPION) for name in names}


def load_model_set(
    workdir: Path,
    tables: Tables,
    previous: ModelSet | None = None,
    versions: dict[str, str | None] | None = None,
) -> ModelSet:
    """The registry's champions (``versions``, default: asked now) as a :class:`ModelSet`
    over ``tables`` (the data source's, as loaded), reusing what ``previous`` already holds
    of the same versions.  A champion that disappeared from the registry keeps being served
    (with a warning) rather than leaving its endpoints without a model."""
    import time

    started = time.perf_counter()
    versions = versions if versions is not None else registry_versions(workdir)
    models = {f: _champion(f, versions[f], previous) for f in FAMILIES}
    missing = {f: f"no {f} champion: run {WHAT_TO_RUN[f]}" for f, m in models.items() if m is None}
    sentiment, sentiment_version = _sentiment_champion(versions[SENTIMENT_MODEL_NAME], previous)
    deal = models["deal-win"]
    scorer, deal_sentiment, prepared, label = None, None, tables, "won"
    if deal is not None:
        scorer, prepared = _deal_scorer(deal, tables, workdir, previous)
        scorer.model.warm_up()  # the explainer's kernels compiled before the first request
        deal_sentiment = _deal_sentiment(deal, sentiment)
        label = (deal.record.label if deal.record else {}).get("definition", "won")
    built = ModelSet(
        models=models,
        missing=missing,
        sentiment=sentiment,
        sentiment_version=sentiment_version,
        tables=prepared,
        scorer=scorer,
        deal_sentiment=deal_sentiment,
        label=label,
        loaded_at=time.time(),
    )
    logger.info(
        "models loaded in %.1f s: %s%s",
        time.perf_counter() - started,
        ", ".join(f"{k} v{v}" for k, v in built.versions().items()),
        "".join(f"; {why}" for why in missing.values()),
    )
    return built


def _champion(family: str, version: str | None, previous: ModelSet | None):
    """``family``'s champion ``version``: the previous set's model when it is the same
    version (its caches and the deal context built for it are kept), else loaded now."""
    old = previous.models.get(family) if previous is not None else None
    if version is None:
        if old is not None:
            logger.warning(
                "%s has no champion in the registry any more: still serving version %s",
                family,
                old.version,
            )
        return old
    if old is not None and old.version == version:
        return old
    return registry.load_model(family, version=version)


def _deal_scorer(
    deal: LoadedModel, tables: Tables, workdir: Path, previous: ModelSet | None
) -> tuple[DealScorer, Tables]:
    """A scorer for ``deal`` and the tables it reads (email tone scored as it was trained):
    the previous scorer when the model is the same, its context when only the model
    changed, else a context built and indexed now."""
    from spm_ml.models.deal_win import custom_fields_of, feature_config_of
    from spm_ml.scoring import DealScorer
    from spm_ml.training.deal_win import prepare_tables

    old = previous.scorer if previous is not None else None
    config = feature_config_of(deal.record)
    if old is not None:
        if old.model is deal.model:
            return old, previous.tables
        same_fields = custom_fields_of(deal.record)
        if old.feature_config == config and (
            same_fields is None or tuple(same_fields) == old.context.custom_fields
        ):
            return DealScorer(deal.model, old.context, config), previous.tables
    prepared, _ = prepare_tables(tables, config, workdir)
    scorer = DealScorer.for_model(deal, prepared)
    scorer.context.index_rows()  # cut-out index for scoring by id, before requests
    return scorer, prepared


def _sentiment_champion(workdir: Path, previous: ModelSet | None) -> tuple[SentimentModel, str]:
    """The ``email-sentiment`` champion and its version; the built-in default model (with a
    warning) when the registry has none."""
    from spm_ml.nlp.batch import resolve_model

    version = registry.alias_version(SENTIMENT_MODEL_NAME, registry.CHAMPION)
    if previous is not None and previous.sentiment_version == (
        version or DEFAULT_SENTIMENT_VERSION
    ):
        return previous.sentiment, previous.sentiment_version
    if version is None:
        logger.warning(
            "no %s champion in the registry: serving the built-in default sentiment model "
            "(spm-ml quickstart registers it)",
            SENTIMENT_MODEL_NAME,
        )
        return resolve_model(None), DEFAULT_SENTIMENT_VERSION
    return resolve_model(f"models:/{SENTIMENT_MODEL_NAME}/{version}"), version


def _deal_sentiment(deal: LoadedModel, champion: SentimentModel) -> SentimentModel | None:
    """The sentiment model to score a posted deal's email text with: the one the deal
    model's email tone came from (the registered champion or the built-in default, by
    fingerprint); ``None`` when the model reads no email tone.  Another model is served
    with a warning (its tone features would drift)."""
    record = deal.record
    if record is None or not record.feature_config.get("email_sentiment", True):
        return None
    from spm_ml.nlp.batch import resolve_model

    wanted = record.sentiment_model
    if wanted and champion.fingerprint == wanted:
        return champion
    model = resolve_model(None)
    if wanted and model.fingerprint != wanted:
        logger.warning(
            "the deal model's email tone came from sentiment model %s, the service has %s: "
            "tone features may differ from training",
            wanted,
            model.fingerprint,
        )
    return model
