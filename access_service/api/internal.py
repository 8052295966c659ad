"""Internal API for the gateway and the services (internal secret required): principals and decisions."""

from __future__ import annotations

from aiohttp import web

from access_service.api.keys import ACCESS_KEY, DECISIONS_KEY
from access_service.schemas import KeyCredentials, int_id
from shared.authz import PermissionsQuery
from shared.errors import NotFound, Unauthorized
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
    user_id = int_id(request.match_info["user_id"])
    if user_id is None:
        raise Unauthorized("unknown user")
    return json_model(await request.app[ACCESS_KEY].principal_for_user(user_id))


@routes.post("/internal/permissions")
async def permissions(request: web.Request) -> web.Response:
    """What a user may do with a collection: `PermissionsQuery` -> `Permissions`."""
    query = await parse_body(request, PermissionsQuery)
    return json_model(await request.app[DECISIONS_KEY].permissions(query.user_id, query.collection))


@routes.get("/internal/project-roles/{project_id}/{user_id}")
async def project_role(request: web.Request) -> web.Response:
    """A user's role on a project: `ProjectRole` (role null when it holds none)."""
    user_id = int_id(request.match_info["user_id"])
    if user_id is None:
        raise NotFound(f"Couldn't find User with 'id'={request.match_info['user_id']}")
    return json_model(
        await request.app[DECISIONS_KEY].project_role(user_id, request.match_info["project_id"])
    )
