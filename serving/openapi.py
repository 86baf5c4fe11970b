"""The OpenAPI document (``GET /docs.json``) as the API really behaves.

BentoML 1.4 writes ``version: "None"`` outside a built Bento, a BentoML advertisement as the
description, for every endpoint a 400 whose ``detail`` is a string and a 500, and passes
pydantic's ``{"type": "null"}`` through (not OpenAPI 3.0) or drops it (so optional fields
look non-nullable).  The service answers 400 with a list of problems, may answer 401, 403,
404, 413, 415 and 422, and answers 5xx on purpose only with 503 (a family without a
champion).  :class:`DocumentedService` (passed to
``bentoml.service`` as ``service_class``) serves a corrected document; schemathesis checks
every answer against it (``tests/serving/test_fuzz.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
from _bentoml_sdk.service.factory import Service
from _bentoml_sdk.service.openapi import REF_TEMPLATE
from bentoml._internal.service.openapi.specification import OpenAPISpecification

import spm_ml
from serving.schemas import MAX_ITEMS, ErrorBody

API_DESCRIPTION = f"""\
Calibrated, explained machine-learning insights for sales teams (spm-ml {spm_ml.__version__}).

Every endpoint takes a list (at most {MAX_ITEMS} items; more is 413) and answers one result
per item, in order, each with its own `status` (200, or the 4xx it earned with `error`
naming the field) and the `models` (name, version) that produced it.  The answer is 200
when any item was answered; when every item was refused it carries their status.

* `POST /v1/deals/score`: win probability and top SHAP drivers of open deals, by `deal_id`
  (the service's data source, as of `as_of`) or posted with their history and events.
* `POST /v1/reps/risk`: quota-miss risk of reps by `rep_id` or posted with their records
  (`rep`, at most 16 per request); attrition risk of top
  performers for admins and the rep's own manager only.
* `POST /v1/emails/sentiment`: calibrated tone of emails (text never logged or stored).
* `GET /v1/managers/{id}/report`: the manager's pre-call page as HTML, from the service's
  batch run (that manager's token and admins; not described below, being HTML).
* `POST /admin/reload`: load the registry's current champions now (admins).

Limits: bodies up to `SPM_ML_MAX_BODY_BYTES` (default 2,000,000 bytes, else 413), JSON only
(else 415), ids 1-128 printable characters, datetimes from 1970-01-01 to before 2200-01-01
(an offset is converted to UTC, none means UTC), at most 10,000 items per event list.
A rejected body answers 400 with every problem's field path and kind, never with the
submitted values.  Email subjects and bodies are never logged, stored or echoed.  A model
family without a champion answers 503 with what to run.

Every route except the health probes needs `Authorization: Bearer <token>`, a token made
by `spm-ml token create` (else 401); `/admin/*` routes need an admin token (else 403).
Each answer carries an `X-Request-Id` (the client's, when short and plain).  `/metrics`
serves Prometheus request counts and latencies per endpoint and status (no request data);
`/` is this document in Swagger UI.
"""

METRICS_DESCRIPTION = (
    "Prometheus metrics: request counts, latencies and in-flight requests per endpoint and "
    "HTTP status. No request data. Needs a token of any role."
)

ERROR_RESPONSES = {
    "400": "The body is not a valid request: each problem's field path, kind and rule "
    "(submitted values are never repeated).",
    "401": "`Authorization: Bearer <token>` is missing, or the token is unknown or revoked.",
    "403": "The token's role may not use this route (`/admin/*`: admins).",
    "404": "Every item named an id the service's data source lacks (the items list them).",
    "413": f"The body is larger than SPM_ML_MAX_BODY_BYTES, or a list has more than "
    f"{MAX_ITEMS} items.",
    "415": "The body is not application/json.",
    "422": (
        "Every item was well-formed but not scorable as asked (each item says why, naming "
        "the field): a posted deal without its initial history, as_of not after creation "
        "or after the close, emails without tone when the model reads it."
    ),
    "503": "The endpoint's model family has no champion in the registry; the message says "
    "what to run.",
}


class DocumentedService(Service):  # type: ignore[type-arg]
    """A BentoML service whose OpenAPI document carries spm-ml's version and real errors."""

    @property
    def openapi_spec(self) -> OpenAPISpecification:
        spec = super().openapi_spec
        fields = {f.name: getattr(spec, f.name) for f in attrs.fields(type(spec))}
        return _DocumentedSpec(**fields)


class _DocumentedSpec(OpenAPISpecification):
    """BentoML serves ``openapi_spec.asdict()``: the corrections are made on that dict."""

    def asdict(self) -> dict[str, Any]:
        return document(super().asdict())


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of BentoML's OpenAPI dict with spm-ml's info, errors and nullable fields."""
    spec = copy.deepcopy(spec)
    spec["info"] = {
        "title": "spm-ml",
        "version": spm_ml.__version__,
        "description": API_DESCRIPTION,
    }
    error = {"schema": {"$ref": REF_TEMPLATE.format(model=ErrorBody.__name__)}}
    for item in spec["paths"].values():
        operation = item.get("post")
        if not operation or "x-bentoml-name" not in operation:
            continue  # infrastructure routes
        if "requestBody" in operation:
            operation["requestBody"]["required"] = True
        operation["responses"] = {
            "200": next(v for k, v in operation["responses"].items() if str(k) == "200"),
            **{
                status: {"description": text, "content": {"application/json": error}}
                for status, text in ERROR_RESPONSES.items()
            },
        }
    metrics = spec["paths"].get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["description"] = METRICS_DESCRIPTION
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template=REF_TEMPLATE)
    schemas.update(error_schema.pop("$defs", {}))
    schemas[ErrorBody.__name__] = error_schema
    return _nullable(spec)


def _nullable(node: Any) -> Any:
    """pydantic's optional fields in OpenAPI 3.0 terms: ``nullable: true``."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        node["nullable"] = True
    elif "default" in node and node["default"] is None:
        node["nullable"] = True
    if "$ref" in node and len(node) > 1:
        # siblings of $ref are ignored in OpenAPI 3.0: keep them beside an allOf
        node["allOf"] = [{"$ref": node.pop("$ref")}]
    return node
