"""Model families and what they share: calibration, metrics, plots, the pyfunc wrapper."""

from __future__ import annotations

from spm_ml.models.attrition import AttritionModel
from spm_ml.models.deal_win import DealWinModel
from spm_ml.models.gbm import CalibratedGBM

__all__ = ["AttritionModel", "CalibratedGBM", "DealWinModel"]
