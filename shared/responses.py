"""JSON responses from pydantic models, serialised once by pydantic (no intermediate dicts)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel


def json_model(model: BaseModel, status: int = 200) -> web.Response:
    """The model as a JSON response body."""
    return web.Response(body=model.model_dump_json().encode(), status=status, content_type="application/json")
