"""Parsing request bodies and queries into strict pydantic models, with clear 4xx messages."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from shared.errors import Invalid, ValidationFailed

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe(error: ValidationError) -> str:
    """One readable line for the first problem pydantic found: `field: what is wrong`."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    return f"{location}: {message}" if location else message


def validate(model: type[ModelT], data: Any) -> ModelT:
    """Validate already-decoded data; a failure is a `ValidationFailed` with the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe(exc)) from exc


async def read_json(request: web.Request) -> Any:
    """The decoded JSON body; 400 when it is not JSON. An empty body reads as `{}`."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed JSON body") from exc


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The request body as `model`: JSON, then strict validation."""
    return validate(model, await read_json(request))


def parse_query(request: web.Request, model: type[ModelT]) -> ModelT:
    """The query string as `model` (values arrive as strings; the model decides how to read them)."""
    return validate(model, dict(request.query))
