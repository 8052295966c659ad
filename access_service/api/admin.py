"""Admin API (through the gateway, admin role required): users and API keys."""

from __future__ import annotations

from aiohttp import web

from access_service.api.keys import ACCESS_KEY
from access_service.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    RevokeResult,
    UserCreate,
    UserPublic,
    int_id,
)
from shared.errors import NotFound
from shared.openapi import documented
from shared.principal import require_admin, require_principal
from shared.requests import parse_body
from shared.responses import json_model

routes = web.RouteTableDef()


def user_id_of(request: web.Request) -> int:
    """The `{user_id}` path segment as an integer; anything else names no user (404)."""
    raw = request.match_info["user_id"]
    user_id = int_id(raw)
    if user_id is None:
        raise NotFound(f"Couldn't find User with 'id'={raw}")
    return user_id


def admin_id(request: web.Request) -> int:
    """The calling admin's user id; 403 for anyone else."""
    principal = require_principal(request)
    require_admin(principal)
    return principal.user_id


@routes.post("/admin/users")
@documented(
    UserPublic,
    status=201,
    body=UserCreate,
    errors={400: "a field invalid", 409: "email already in use"},
    admin=True,
)
async def create_user(request: web.Request) -> web.Response:
    """Create a user."""
    actor = admin_id(request)
    data = await parse_body(request, UserCreate)
    return json_model(await request.app[ACCESS_KEY].create_user(data, actor=actor), status=201)


@routes.get("/admin/users/{user_id}")
@documented(UserPublic, errors={404: "Couldn't find User with 'id'=..."}, admin=True)
async def get_user(request: web.Request) -> web.Response:
    """Show one user."""
    admin_id(request)
    return json_model(await request.app[ACCESS_KEY].get_user(user_id_of(request)))


@routes.post("/admin/users/{user_id}/api-keys")
@documented(
    ApiKeyCreated,
    status=201,
    body=ApiKeyCreate,
    errors={400: "a field invalid", 404: "Couldn't find User with 'id'=..."},
    admin=True,
)
async def create_api_key(request: web.Request) -> web.Response:
    """Issue an API key for a user; the only answer that shows the secret."""
    actor = admin_id(request)
    data = await parse_body(request, ApiKeyCreate)
    return json_model(
        await request.app[ACCESS_KEY].create_api_key(user_id_of(request), data, actor=actor), status=201
    )


@routes.delete("/admin/api-keys/{key_id}")
@documented(RevokeResult, errors={404: "Couldn't find ApiKey with 'id'=..."}, admin=True)
async def revoke_api_key(request: web.Request) -> web.Response:
    """Revoke an API key."""
    actor = admin_id(request)
    key_id = request.match_info["key_id"]
    await request.app[ACCESS_KEY].revoke_api_key(key_id, actor=actor)
    return json_model(RevokeResult(id=key_id))
