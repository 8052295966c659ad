"""Admin API for user groups (through the gateway, admin role required)."""

from __future__ import annotations

from aiohttp import web

from access_service.api.admin import admin_id
from access_service.api.keys import GROUPS_KEY
from access_service.schemas import GroupCreate, GroupMembersAdd
from shared.requests import parse_body
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.post("/admin/groups")
async def create_group(request: web.Request) -> web.Response:
    """Create a user group."""
    actor = admin_id(request)
    data = await parse_body(request, GroupCreate)
    return json_model(await request.app[GROUPS_KEY].create(data, actor=actor), status=201)


@routes.get("/admin/groups")
async def list_groups(request: web.Request) -> web.Response:
    """List every user group with its members."""
    admin_id(request)
    return json_model(await request.app[GROUPS_KEY].list_groups())


@routes.get("/admin/groups/{group_id}")
async def get_group(request: web.Request) -> web.Response:
    """Show one user group with its members."""
    admin_id(request)
    return json_model(await request.app[GROUPS_KEY].get(request.match_info["group_id"]))


@routes.post("/admin/groups/{group_id}/members")
async def add_members(request: web.Request) -> web.Response:
    """Put users into a group."""
    actor = admin_id(request)
    data = await parse_body(request, GroupMembersAdd)
    groups = request.app[GROUPS_KEY]
    return json_model(await groups.add_members(request.match_info["group_id"], data, actor=actor))


@routes.delete("/admin/groups/{group_id}/members/{user_id}")
async def remove_member(request: web.Request) -> web.Response:
    """Take a user out of a group."""
    actor = admin_id(request)
    groups = request.app[GROUPS_KEY]
    return json_model(
        await groups.remove_member(request.match_info["group_id"], request.match_info["user_id"], actor=actor)
    )
