"""Dialect B (`/api/v2/collections/{id}/...`): visibility, shared users, guests and shared groups."""

from __future__ import annotations

from aiohttp import web

from access_service.api.keys import SHARING_KEY
from access_service.schemas import GroupsPublic, GuestInvite, NoBody, OkV2, UsersV2, VisibilityV2
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_body, read_json
from shared.responses import json_model

routes = web.RouteTableDef()

BASE = "/api/v2/collections/{collection_id}"


def collection_id_of(request: web.Request) -> str:
    """The `{collection_id}` path segment."""
    return request.match_info["collection_id"]


@routes.post(f"{BASE}/public")
@documented(
    VisibilityV2,
    body=NoBody,
    errors={
        400: "Collection is public already",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def make_public(request: web.Request) -> web.Response:
    """Set as public."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(await sharing.set_public(principal, collection_id_of(request), True))


@routes.post(f"{BASE}/private")
@documented(
    VisibilityV2,
    body=NoBody,
    errors={
        400: "Collection is private already",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def make_private(request: web.Request) -> web.Response:
    """Set as private."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(await sharing.set_public(principal, collection_id_of(request), False))


@routes.get(f"{BASE}/users")
@documented(UsersV2, errors={404: "collection not found"})
async def list_users(request: web.Request) -> web.Response:
    """List users: the owner and the users and guests the collection is shared with."""
    principal = require_principal(request)
    return json_model(await request.app[SHARING_KEY].users(principal, collection_id_of(request)))


@routes.get(f"{BASE}/all_users")
@documented(UsersV2, errors={404: "collection not found"})
async def list_all_users(request: web.Request) -> web.Response:
    """List all users who are allowed to see this entity."""
    principal = require_principal(request)
    return json_model(await request.app[SHARING_KEY].all_users(principal, collection_id_of(request)))


@routes.post(f"{BASE}/users/{{user_id}}")
@documented(
    OkV2,
    body=NoBody,
    errors={
        400: "User is already member of this Collection",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found, or Couldn't find User with 'id'=...",
        422: "Missing parameters",
    },
)
async def add_user(request: web.Request) -> web.Response:
    """Add user."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(
        await sharing.add_user(principal, collection_id_of(request), request.match_info["user_id"])
    )


@routes.delete(f"{BASE}/users/{{user_id}}")
@documented(
    OkV2,
    body=NoBody,
    errors={
        400: "User is not a member of this Collection",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found, or Couldn't find User with 'id'=...",
        422: "Missing parameters",
    },
)
async def remove_user(request: web.Request) -> web.Response:
    """Remove user."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(
        await sharing.remove_user(principal, collection_id_of(request), request.match_info["user_id"])
    )


@routes.post(f"{BASE}/guests")
@documented(
    UsersV2,
    body=GuestInvite,
    errors={
        400: "User already exists",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def invite_guest(request: web.Request) -> web.Response:
    """Invite guest by email (an unknown collection is 404 whatever the body, as the document shows)."""
    principal = require_principal(request)
    body = await read_json(request)
    sharing = request.app[SHARING_KEY]
    return json_model(await sharing.invite_guest_body(principal, collection_id_of(request), body))


@routes.get(f"{BASE}/user_groups")
@documented(GroupsPublic, errors={404: "collection not found"})
async def list_user_groups(request: web.Request) -> web.Response:
    """Get user groups."""
    principal = require_principal(request)
    return json_model(await request.app[SHARING_KEY].user_groups(principal, collection_id_of(request)))


@routes.post(f"{BASE}/user_groups/{{group_id}}")
@documented(
    OkV2,
    body=NoBody,
    errors={
        400: "User group with id ... is already part of this Collection",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found, or Couldn't find UserGroup with 'id'=...",
        422: "Missing parameters",
    },
)
async def add_user_group(request: web.Request) -> web.Response:
    """Add user group."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(
        await sharing.add_group(principal, collection_id_of(request), request.match_info["group_id"])
    )


@routes.delete(f"{BASE}/user_groups/{{group_id}}")
@documented(
    OkV2,
    body=NoBody,
    errors={
        400: "User group with id ... is not part of this Collection",
        403: "only the owner or an admin may change who can see this collection",
        404: "collection not found, or Couldn't find UserGroup with 'id'=...",
        422: "Missing parameters",
    },
)
async def remove_user_group(request: web.Request) -> web.Response:
    """Remove user group."""
    principal = require_principal(request)
    await parse_body(request, NoBody)
    sharing = request.app[SHARING_KEY]
    return json_model(
        await sharing.remove_group(principal, collection_id_of(request), request.match_info["group_id"])
    )
