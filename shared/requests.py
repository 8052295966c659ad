"""Parsing request bodies and queries into strict pydantic models, with clear 4xx messages."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ValidationError

from shared.errors import Invalid, ValidationFailed

ModelT = TypeVar("ModelT", bound=BaseModel)
_DIGITS = re.compile(r"[0-9]{1,18}")


def _plain_digits(value: Any) -> Any:
    """A number from a query string is written in plain ASCII digits: no sign, space, point, underscore."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number written in digits")
    return value


# An integer query parameter (`page`, `pageSize`): pydantic alone would read "+5", " 5", "5.0" and "5_0".
QueryInt = Annotated[int, BeforeValidator(_plain_digits)]


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


MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _no_constant(name: str) -> Any:
    raise Invalid(f"JSON body must not contain {name}")


def check_storable(data: Any) -> None:
    """400 unless every value fits what MongoDB stores and JSON answers can show.

    Nesting <= 32, integers in int64, finite numbers, strings and keys valid UTF-8 (no lone surrogates),
    no NUL in a key. Iterative, so no input can exhaust the stack.
    """
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list) and depth > MAX_JSON_DEPTH:
            raise Invalid("JSON body nests too deeply")
        if isinstance(node, dict):
            for key, value in node.items():
                if "\x00" in key or not _utf8(key):
                    raise Invalid("JSON body has a key that cannot be stored")
                pending.append((value, depth + 1))
        elif isinstance(node, list):
            pending.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            if not _utf8(node):
                raise Invalid("JSON body has a string that is not valid UTF-8")
        elif isinstance(node, int) and not isinstance(node, bool) and not INT64_MIN <= node <= INT64_MAX:
            raise Invalid("JSON body has an integer out of range")
        elif isinstance(node, float) and not math.isfinite(node):
            raise Invalid("JSON body has a number out of range")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_json(request: web.Request) -> Any:
    """The decoded JSON body, checked with `check_storable`; 400 when it is not JSON. No body reads as `{}`;
    one of only whitespace is not JSON (400)."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError as exc:
        raise Invalid("JSON body nests too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("malformed JSON body") from exc
    check_storable(data)
    return data


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The request body as `model`: JSON, then strict validation."""
    return validate(model, await read_json(request))


def parse_query(request: web.Request, model: type[ModelT]) -> ModelT:
    """The query string as `model` (values arrive as strings; the model decides how to read them). A
    parameter given twice is refused: which one counts would be a guess."""
    if len(request.query) != len(set(request.query)):
        twice = next(key for key in request.query if len(request.query.getall(key)) > 1)
        raise ValidationFailed(f"{twice}: given more than once")
    return validate(model, dict(request.query))
