"""What a public handler declares about itself, for the OpenAPI documents the gateway serves.

A handler keeps parsing its input itself (`parse_body(request, Model)`); `documented(...)` names the same
models, its success status and answer model, and the errors its use case can raise. The gateway reads these
declarations off the services' route tables (`gateway/openapi/`), so the description is built from the
code that answers, and the fuzzer (`tests/fuzz/`) fails wherever the two disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict

HandlerT = TypeVar("HandlerT", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])

_ATTRIBUTE = "__openapi_operation__"


@dataclass(frozen=True)
class Operation:
    """One route's contract: request body and query models, the success answer, the errors it may answer.

    `errors` maps a status to when it happens; the gateway's own answers (401, 429, a malformed path...)
    are added to every operation by the document builder, so handlers list only their use case's.
    """

    response: Any
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: Mapping[int, str] = field(default_factory=dict)
    admin: bool = False


def documented(
    response: Any,
    *,
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    errors: Mapping[int, str] | None = None,
    admin: bool = False,
) -> Callable[[HandlerT], HandlerT]:
    """Attach the route's contract to its handler (read by the gateway's OpenAPI builder)."""
    operation = Operation(
        response=response,
        status=status,
        body=body,
        query=query,
        errors=dict(errors or {}),
        admin=admin,
    )

    def attach(handler: HandlerT) -> HandlerT:
        setattr(handler, _ATTRIBUTE, operation)
        return handler

    return attach


def operation_of(handler: object) -> Operation | None:
    """The contract a handler declared, or None for an undocumented (internal) one."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None


class ErrorBody(BaseModel):
    """The error body of dialects B and C, the admin API and the registry: `{"error": "..."}`."""

    model_config = ConfigDict(extra="forbid")

    error: str


class ErrorBodyA(BaseModel):
    """Dialect A's error body (NestJS style): the status, a message and the status's reason phrase."""

    model_config = ConfigDict(extra="forbid")

    statusCode: int  # noqa: N815 - the dialect's field name
    message: str
    error: str
