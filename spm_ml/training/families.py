"""Every model family spm-ml knows, by the name its models' training records carry."""

from __future__ import annotations

from spm_ml.errors import ModelNotFoundError
from spm_ml.training.attrition import ATTRITION
from spm_ml.training.deal_win import DEAL_WIN
from spm_ml.training.family import FamilySpec
from spm_ml.training.quota_risk import QUOTA_RISK

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (DEAL_WIN, QUOTA_RISK, ATTRITION)}


def family_spec(name: str) -> FamilySpec:
    """The family called ``name``; a clear error for a name no spec carries."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
