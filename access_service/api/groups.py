"""Admin API for user groups (through the gateway, admin role required)."""

from __future__ import annotations

from aiohttp import web

from access_service.api.admin import admin_id
from access_service.api.keys import GROUPS_KEY
from access_service.schemas import GroupCreate, GroupMembersAdd, GroupPublic, GroupsPublic
from shared.openapi import documented
from shared.requests import parse_body
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.post("/admin/groups")
@documented(GroupPublic, status=201, body=GroupCreate, errors={400: "a field invalid"}, admin=True)
async def create_group(request: web.Request) -> web.Response:
    """Create a user group."""
    actor = admin_id(request)
    data = await parse_body(request, GroupCreate)
    return json_model(await request.app[GROUPS_KEY].create(data, actor=actor), status=201)


@routes.get("/admin/groups")
@documented(GroupsPublic, admin=True)
async def list_groups(request: web.Request) -> web.Response:
    """List every user group with its members."""
    admin_id(request)
    return json_model(await request.app[GROUPS_KEY].list_groups())


@routes.get("/admin/groups/{group_id}")
@documented(GroupPublic, errors={404: "Couldn't find UserGroup with 'id'=..."}, admin=True)
async def get_group(request: web.Request) -> web.Response:
    """Show one user group with its members."""
    admin_id(request)
    return json_model(await request.app[GROUPS_KEY].get(request.match_info["group_id"]))


@routes.post("/admin/groups/{group_id}/members")
@documented(
    GroupPublic,
    body=GroupMembersAdd,
    errors={400: "user_ids invalid", 404: "group or user not found"},
    admin=True,
)
async def add_members(request: web.Request) -> web.Response:
    """Put users into a group."""
    actor = admin_id(request)
    data = await parse_body(request, GroupMembersAdd)
    groups = request.app[GROUPS_KEY]
    return json_model(await groups.add_members(request.match_info["group_id"], data, actor=actor))


@routes.delete("/admin/groups/{group_id}/members/{user_id}")
@documented(
    GroupPublic,
    errors={400: "User is not a member of this UserGroup", 404: "group or user not found"},
    admin=True,
)
async def remove_member(request: web.Request) -> web.Response:
    """Take a user out of a group."""
    actor = admin_id(request)
    groups = request.app[GROUPS_KEY]
    return json_model(
        await groups.remove_member(request.match_info["group_id"], request.match_info["user_id"], actor=actor)
    )
