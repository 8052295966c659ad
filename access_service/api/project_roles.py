"""Admin API for roles on projects (through the gateway, admin role required)."""

from __future__ import annotations

from aiohttp import web

from access_service.api.admin import admin_id
from access_service.api.keys import ROLES_KEY
from access_service.schemas import ProjectMember, ProjectRoleUpdate
from shared.openapi import documented
from shared.requests import parse_body
from shared.responses import json_model

routes = web.RouteTableDef()

MEMBER = "/admin/namespaces/{namespace_slug}/projects/{project_slug}/members/{user_id}"


def member_of(request: web.Request) -> tuple[str, str, str]:
    """(namespace slug, project slug, raw user id) from the path."""
    info = request.match_info
    return info["namespace_slug"], info["project_slug"], info["user_id"]


@routes.put(MEMBER)
@documented(
    ProjectMember,
    body=ProjectRoleUpdate,
    errors={400: "role invalid", 404: "project or user not found"},
    admin=True,
)
async def set_role(request: web.Request) -> web.Response:
    """Give a user a role on a project: owner, editor or viewer."""
    actor = admin_id(request)
    data = await parse_body(request, ProjectRoleUpdate)
    return json_model(await request.app[ROLES_KEY].set_role(*member_of(request), data, actor=actor))


@routes.delete(MEMBER)
@documented(
    ProjectMember, errors={404: "project or user not found, or the user has no role on it"}, admin=True
)
async def remove_role(request: web.Request) -> web.Response:
    """Take a user's role on a project away."""
    actor = admin_id(request)
    return json_model(await request.app[ROLES_KEY].remove_role(*member_of(request), actor=actor))
