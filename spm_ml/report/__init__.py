"""The manager's page (``spm-ml report``, ``GET /v1/managers/{id}/report``): one
self-contained HTML file per manager built from a batch run's outputs alone."""

from spm_ml.report.outputs import BatchOutputs, ReportError, read_batch_outputs
from spm_ml.report.page import ManagerPage, manager_page
from spm_ml.report.render import render_manager, render_page, write_all, write_page

__all__ = [
    "BatchOutputs",
    "ManagerPage",
    "ReportError",
    "manager_page",
    "read_batch_outputs",
    "render_manager",
    "render_page",
    "write_all",
    "write_page",
]
