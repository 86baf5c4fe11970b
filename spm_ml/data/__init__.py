"""The data layer: the contract, loading, validation, the simulator and real-export adapters."""

from __future__ import annotations

from spm_ml.data.schema import TABLE_NAMES, TABLES, Column, ForeignKey, TableSchema
from spm_ml.data.tables import Tables

__all__ = ["TABLES", "TABLE_NAMES", "Column", "ForeignKey", "TableSchema", "Tables"]
