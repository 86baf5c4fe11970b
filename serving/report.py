"""``GET /v1/managers/{manager_id}/report``: the manager's page (:mod:`spm_ml.report`) over
HTTP, the same HTML ``spm-ml report`` writes, from the batch run in the folder the service
was given (``spm-ml serve --report-from DIR``, default ``WORKDIR/outputs/batch``).

Who sees a page: an admin, and the manager it is about (a ``manager`` token whose
``manager_id`` is the one asked); any other caller gets 403, coaches included.  No batch
run in the folder is 503, a manager without reps in the run 404, each with a JSON error
saying what to run or which ids exist.  The run's rows are read once and kept until a new
run is published in the folder (its ``manifest.json`` changes), so a page costs the
rendering only.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.auth import Caller, caller_of
from spm_ml.report import BatchOutputs, ReportError, read_batch_outputs, render_manager
from spm_ml.report.outputs import fingerprint

MOUNT = "/v1/managers"
"""Where :func:`report_app` is mounted on the service; its route adds ``/{id}/report``."""


class ReportPages:
    """Pages of one batch output folder, its rows cached per published run."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cached: tuple[tuple | None, BatchOutputs | None] = (None, None)

    def outputs(self) -> BatchOutputs:
        """The current run's rows (read again only when a new run was published)."""
        key = fingerprint(self.folder)
        if key is None:
            raise ReportError(
                f"no batch run in {self.folder} (no manifest.json): run `spm-ml batch --out "
                f"{self.folder} --as-of DATE`, or start the service with --report-from DIR"
            )
        with self._lock:
            cached_key, outputs = self._cached
            if cached_key != key or outputs is None:
                outputs = read_batch_outputs(self.folder)
                self._cached = (key, outputs)
            return outputs

    def answer(self, manager_id: str, caller: Caller) -> Response:
        """The page as ``text/html``, or the JSON error a caller is owed (403/404/503)."""
        if not may_see(caller, manager_id):
            return _error(
                403,
                f"manager {manager_id}'s report is for that manager's token and admins; "
                f"this {caller.role} token is neither",
            )
        try:
            outputs = self.outputs()
        except ReportError as err:
            return _error(503, str(err))
        try:
            html = render_manager(outputs, manager_id)
        except ReportError as err:
            return _error(404, str(err))
        return Response(html, media_type="text/html; charset=utf-8")


def may_see(caller: Caller, manager_id: str) -> bool:
    """Admins see every page; a manager only their own; coaches none."""
    if caller.role == "admin":
        return True
    return caller.role == "manager" and caller.manager_id == manager_id


def report_app(pages_of) -> Starlette:
    """The ASGI app of the route; ``pages_of()`` gives the :class:`ReportPages` and the
    request's caller (the service's, read when the request comes)."""

    async def report(request: Request) -> Response:
        pages, anonymous = pages_of()
        caller = caller_of(_Context(request)) or anonymous
        manager_id = request.path_params["manager_id"]
        return await run_in_threadpool(pages.answer, manager_id, caller)

    return Starlette(routes=[Route("/{manager_id}/report", report, methods=["GET"])])


class _Context:
    """What :func:`serving.auth.caller_of` reads (a BentoML context's ``request``)."""

    def __init__(self, request: Request) -> None:
        self.request = request


def _error(status: int, message: str) -> Response:
    return Response(
        json.dumps({"error": message}), status_code=status, media_type="application/json"
    )
