"""spm-ml: calibrated, explained machine-learning insights for Sales Performance Management."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
