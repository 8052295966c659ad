"""Building the OpenAPI 3.1 documents from the route tables and the models their handlers declare.

Request bodies, queries and answers are the pydantic models the handlers validate with and answer with
(`shared.openapi.documented`), turned into JSON Schema by pydantic; the error body of each status is the
one `shared.errors` renders for that path's dialect; the gateway's own answers (401, 429, a malformed or
over-long path, a body over the limit, a service that is down) are added to every operation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway.openapi.catalogue import DOCUMENTS, SECURITY_SCHEMES, DocumentSpec
from gateway.openapi.examples import EXAMPLES
from gateway.openapi.parameters import path_parameter
from shared.errors import Dialect, dialect_for_path
from shared.openapi import ErrorBody, ErrorBodyA, Operation, operation_of

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
REF = "#/components/schemas/{model}"
_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]+))?\}")
Mode = Literal["validation", "serialization"]


@dataclass(frozen=True)
class Route:
    """One public operation: its document, method, OpenAPI path, summary and declared contract."""

    document: DocumentSpec
    method: str
    path: str
    summary: str
    operation: Operation


def expand(path: str) -> Iterator[str]:
    """The OpenAPI paths of an aiohttp path: `{kind:assets|models}` becomes one path per alternative."""
    match = next((m for m in _PLACEHOLDER.finditer(path) if m.group(2)), None)
    if match is None:
        yield path
        return
    for alternative in match.group(2).split("|"):
        if not re.fullmatch(r"[\w-]+", alternative):
            raise ValueError(f"cannot document the path pattern {path!r}")
        yield from expand(path[: match.start()] + alternative + path[match.end() :])


def routes_of(document: DocumentSpec, own: Iterable[web.RouteDef] = ()) -> list[Route]:
    """Every documented operation of a document's route tables (and of the gateway's own routes)."""
    found: list[Route] = []
    for definition in [*(d for table in document.tables for d in table), *own]:
        if not isinstance(definition, web.RouteDef):
            continue
        operation = operation_of(definition.handler)
        if operation is None:
            raise ValueError(f"{definition.method} {definition.path} declares no contract (shared.openapi)")
        summary = (definition.handler.__doc__ or "").strip().splitlines()[0].rstrip(".")
        found.extend(
            Route(document, definition.method, path, summary, operation) for path in expand(definition.path)
        )
    return found


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], Mode]]:
    """Every model the routes name, once, with the direction it travels in."""
    wanted: dict[tuple[type[BaseModel], Mode], None] = {(ErrorBody, "serialization"): None}
    wanted[(ErrorBodyA, "serialization")] = None
    for route in routes:
        wanted[(route.operation.response, "serialization")] = None
        if route.operation.body is not None:
            wanted[(route.operation.body, "validation")] = None
    return list(wanted)


# The gateway answers these on any route, before or instead of the service.
_GATEWAY_ERRORS = {
    400: "a malformed request path (dot segments, encoded slashes, odd escapes)",
    401: "no credentials, or credentials that are not valid",
    414: "a request path over 2,048 characters",
    429: "a rate limit was reached (`Retry-After` says when to try again)",
    503: "a service did not answer in time",
}


def _errors(route: Route) -> dict[int, str]:
    """Every error status of the route, with when it happens."""
    statuses: dict[int, list[str]] = {}
    for status, when in route.operation.errors.items():
        statuses.setdefault(status, []).append(when)
    gateway = dict(_GATEWAY_ERRORS)
    if route.operation.admin:
        gateway[403] = "the caller is not an admin"
    if route.operation.body is not None:
        gateway[400] = gateway[400].replace("path", "path, or a body that is not JSON or nests too deeply")
        gateway[413] = "a body over the size limit"
    for status, when in gateway.items():
        statuses.setdefault(status, []).append(when)
    return {status: "; or ".join(statuses[status]) for status in sorted(statuses)}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query model's fields as query parameters, with their limits and defaults."""
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    parameters = []
    for name, declared in schema["properties"].items():
        field_schema = {k: v for k, v in declared.items() if k != "title"}
        # Query values that may be absent are never sent as null: describe the value alone.
        if "anyOf" in field_schema:
            options = [o for o in field_schema.pop("anyOf") if o.get("type") != "null"]
            field_schema = {**options[0], **field_schema} if len(options) == 1 else {"anyOf": options}
            if field_schema.get("default", 0) is None:
                del field_schema["default"]
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field_schema.pop("description", name),
                "schema": field_schema,
            }
        )
    return parameters


def operation_id(route: Route) -> str:
    """A unique, stable id: document, method and path (`c_get_v1_collections_collection_id`)."""
    path = re.sub(r"\W+", "_", route.path).strip("_")
    return f"{route.document.name}_{route.method.lower()}_{path}"


def _operation(route: Route, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    declared = route.operation
    dialect = dialect_for_path(route.path)
    error_ref = refs[(ErrorBodyA if dialect is Dialect.A else ErrorBody, "serialization")]
    examples = EXAMPLES.get(f"{route.method} {route.path}", {})
    success: dict[str, Any] = {"schema": refs[(declared.response, "serialization")]}
    if "response" in examples:
        success["example"] = examples["response"]
    responses: dict[str, Any] = {
        str(declared.status): {
            "description": HTTPStatus(declared.status).phrase,
            "content": {"application/json": success},
        }
    }
    for status, when in _errors(route).items():
        body: dict[str, Any] = {"schema": error_ref}
        if example := examples.get("errors", {}).get(status):
            body["example"] = example
        responses[str(status)] = {"description": when, "content": {"application/json": body}}
    names = [m.group(1) for m in _PLACEHOLDER.finditer(route.path)]
    parameters = [path_parameter(name) for name in names]
    if declared.query is not None:
        parameters.extend(_query_parameters(declared.query))
    operation: dict[str, Any] = {
        "tags": [route.document.tag],
        "summary": route.summary,
        "operationId": operation_id(route),
        "parameters": parameters,
        "responses": responses,
        "security": [{scheme: []} for scheme in route.document.security],
    }
    if declared.body is not None:
        content: dict[str, Any] = {"schema": refs[(declared.body, "validation")]}
        if "request" in examples:
            content["example"] = examples["request"]
        # An empty body reads as `{}` (shared.requests.read_json): it may be left out when `{}` is valid.
        required = bool(declared.body.model_json_schema().get("required"))
        operation["requestBody"] = {
            "required": required,
            "content": {"application/json": content},
        }
    return operation


def _drop_null_defaults(node: Any) -> Any:
    """Remove `default: null` where null is not allowed: a field left out of an answer when it has no value
    (`SkipJsonSchema[None]`) is absent, not null, and a default the schema forbids is not valid OpenAPI."""
    if isinstance(node, list):
        return [_drop_null_defaults(child) for child in node]
    if not isinstance(node, dict):
        return node
    cleaned = {key: _drop_null_defaults(value) for key, value in node.items()}
    if (
        "default" in cleaned
        and cleaned["default"] is None
        and "null" not in json.dumps(cleaned.get("anyOf", cleaned.get("type")))
    ):
        del cleaned["default"]
    return cleaned


def build_document(documents: Iterable[DocumentSpec], own: Iterable[web.RouteDef] = ()) -> dict[str, Any]:
    """One OpenAPI 3.1 document of the given dialects, `own` being the gateway's routes (admin only)."""
    documents = list(documents)
    routes = [
        route
        for document in documents
        for route in routes_of(document, own if document.name == "admin" else ())
    ]
    refs, definitions = models_json_schema(_models(routes), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    single = documents[0] if len(documents) == 1 else None
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": single.title if single else "collections-hub: every dialect",
            "version": API_VERSION,
            "description": single.description
            if single
            else "The three public API dialects over one domain, and the admin API and registry.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": d.tag, "description": d.description} for d in documents],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _drop_null_defaults(definitions.get("$defs", {})),
            "securitySchemes": {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()},
        },
    }


def build_all(own: Iterable[web.RouteDef] = ()) -> dict[str, dict[str, Any]]:
    """Every document by file name: `a`, `b`, `c`, `admin`, and `all` (the combined one)."""
    own = list(own)
    documents = {spec.name: build_document([spec], own) for spec in DOCUMENTS}
    documents["all"] = build_document(DOCUMENTS, own)
    return documents
