"""Load the pipeline config and build a blank, untrained spaCy pipeline from it.

The config file (``sentiment.cfg`` beside this module by default) is the single description
of the pipeline: components, classifier architecture, aggregation weights and training
settings.  It is logged in full to MLflow with every training run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

from spacy.language import Language
from thinc.api import Config

from spm_ml.errors import SchemaError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CONFIG", "TrainingSettings", "build_nlp", "load_config"]

DEFAULT_CONFIG = Path(__file__).with_name("sentiment.cfg")
"""The packaged pipeline config (``sentiment.cfg``)."""

PRE_PIPES = ("spm_ml_sentences",)
"""Components that prepare the email (cleaning happens in the tokenizer) before scoring."""


@dataclass(frozen=True)
class TrainingSettings:
    """The ``[spm_ml_training]`` section: how the classifier and the blend are fitted."""

    seed: int = 13
    max_epochs: int = 12
    dropout: float = 0.1
    batch_start: int = 8
    batch_stop: int = 64
    learn_rate: float = 0.01
    blend_folds: int = 3
    blend_c: float = 1.0
    test_size: float = 0.2

    @classmethod
    def from_config(cls, config: Config) -> TrainingSettings:
        section = dict(config.get("spm_ml_training", {}))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise SchemaError(
                f"Unknown keys {unknown} in [spm_ml_training] of the sentiment config; "
                f"known keys are {sorted(known)}."
            )
        return cls(**section)


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Read a pipeline config (default: the packaged one), applying dotted-path overrides.

    ``overrides`` maps e.g. ``"components.textcat.model.ngram_size"`` to a value.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise SchemaError(
            f"Sentiment config {path} does not exist; pass a spaCy config file such as "
            f"{DEFAULT_CONFIG}."
        )
    flat = {key: value for key, value in (overrides or {}).items()}
    return Config().from_disk(path, overrides=flat)


def build_nlp(config: Config) -> Language:
    """Build the untrained pipeline described by ``config`` (spaCy blank English + ours)."""
    import spacy

    import spm_ml.nlp.components  # noqa: F401  (registers the config's functions)

    nlp_config = Config({"nlp": config["nlp"], "components": config["components"]})
    return spacy.util.load_model_from_config(nlp_config, auto_fill=True, validate=True)
