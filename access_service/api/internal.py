"""Internal API for the gateway: resolve credentials to a principal (internal secret required)."""

from __future__ import annotations

from aiohttp import web

from access_service.api.keys import ACCESS_KEY
from access_service.schemas import KeyCredentials
from shared.errors import Unauthorized
from shared.requests import parse_body
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.post("/internal/principals/by-api-key")
async def principal_by_api_key(request: web.Request) -> web.Response:
    """The principal behind an API key, or 401."""
    credentials = await parse_body(request, KeyCredentials)
    return json_model(await request.app[ACCESS_KEY].authenticate_key(credentials))


@routes.get("/internal/principals/by-user/{user_id}")
async def principal_by_user(request: web.Request) -> web.Response:
    """The principal of a JWT subject, or 401."""
    raw = request.match_info["user_id"]
    if not raw.isdigit():
        raise Unauthorized("unknown user")
    return json_model(await request.app[ACCESS_KEY].principal_for_user(int(raw)))
