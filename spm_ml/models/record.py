"""What a model must carry to be scored and judged the way it was trained.

Scoring and promotion used to rebuild features with the default configuration, whatever the
model had been trained on.  A :class:`TrainingRecord` is stored with every logged model (as
MLflow model metadata, under the key ``spm_ml``) and read back wherever the model is
loaded: the resolved feature configuration, the label definition, the split cut-offs (so
promotion can keep to rows after training), the sentiment model's fingerprint (so email tone
is computed by the same model) and digests of the data and of the whole recipe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import pandas as pd

METADATA_KEY = "spm_ml"


@dataclass(frozen=True)
class TrainingRecord:
    """The context a fitted model was trained in; see the module docstring."""

    family: str
    feature_config: dict
    label: dict
    cutoffs: dict[str, str]
    sentiment_model: str | None
    data_digest: str
    recipe_digest: str
    """Digest of data, configuration, sentiment model and code: equal digests, equal models."""
    extra: dict = field(default_factory=dict)

    @property
    def training_cutoff(self) -> pd.Timestamp:
        """Every training label was known before this moment (the test fold's start)."""
        return pd.Timestamp(self.cutoffs["test_start"])

    @property
    def horizon_days(self) -> int:
        return int(self.label["horizon_days"])

    def to_metadata(self) -> dict:
        return {METADATA_KEY: json.loads(json.dumps(asdict(self), default=str))}

    @classmethod
    def from_metadata(cls, metadata: dict | None) -> TrainingRecord | None:
        """The record inside MLflow model metadata, or ``None`` for models logged without."""
        body = (metadata or {}).get(METADATA_KEY)
        if not body:
            return None
        return cls(**body)


def digest(*parts: object) -> str:
    """A short stable hex digest of JSON-able parts (dicts are key-sorted)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """Digest of a frame's values, column names and order (not its dtypes' spelling)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    h = hashlib.blake2b(hashed.tobytes(), digest_size=12)
    h.update(json.dumps(list(map(str, frame.columns))).encode())
    return h.hexdigest()
