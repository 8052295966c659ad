"""Request and response models of access_service."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from shared.principal import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

# Integer ids in paths: ASCII digits only (`str.isdigit` also accepts other scripts' digits), at most 18.
_INT_ID = re.compile(r"^[0-9]{1,18}$")


def int_id(raw: str) -> int | None:
    """A path segment as an integer id (users, groups), or None when it cannot name one."""
    return int(raw) if _INT_ID.match(raw) else None


class Strict(BaseModel):
    """Strict input: wrong types and unknown fields are rejected, never coerced or dropped."""

    model_config = ConfigDict(strict=True, extra="forbid")


class UserCreate(Strict):
    """`POST /admin/users`."""

    email: EmailStr
    first_name: Name | None = None
    last_name: Name | None = None
    role: Role = "user"


class UserPublic(BaseModel):
    """A user as the admin API shows it."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    role: Role
    created_at: str


class ApiKeyCreate(Strict):
    """`POST /admin/users/{id}/api-keys`."""

    name: Annotated[str, StringConstraints(max_length=100)] | None = None


class ApiKeyCreated(BaseModel):
    """The one answer that shows the key: `key` for X-API-KEY/Bearer, `key_id:secret` for Basic."""

    id: str
    key_id: str
    key: str
    secret: str
    name: str | None
    user_id: int
    created_at: str


class KeyCredentials(Strict):
    """Internal: what the gateway saw, either the single-string key or Basic's id and secret."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    secret: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None


class RevokeResult(BaseModel):
    """`DELETE /admin/api-keys/{id}`."""

    id: str
    revoked: bool = Field(default=True)


# --- dialect B: visibility and shares -----------------------------------------------------------------


class NoBody(Strict):
    """A dialect B action without parameters: an empty body or `{}`; anything else is a 422."""


class GuestInvite(Strict):
    """`POST /api/v2/collections/{id}/guests`."""

    email: EmailStr


class UserRole(BaseModel):
    """Dialect B's `user_role`."""

    name: Role


class UserV2(BaseModel):
    """A user as dialect B shows it."""

    id: int
    first_name: str | None
    last_name: str | None
    email: str
    user_role: UserRole


class UsersV2(BaseModel):
    """`{"users": [...]}`: users, all_users and the answer to a guest invitation."""

    users: list[UserV2]


class VisibilityV2(BaseModel):
    """`{"is_public": ...}`: the answer to public and private."""

    is_public: bool


class OkV2(BaseModel):
    """`{"ok": "..."}`: the answer to linking or unlinking a user or a group."""

    ok: str


# --- user groups ---------------------------------------------------------------------------------------


class GroupCreate(Strict):
    """`POST /admin/groups`."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class GroupMembersAdd(Strict):
    """`POST /admin/groups/{id}/members`: at most 100 user ids a call."""

    user_ids: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=100)]


class GroupPublic(BaseModel):
    """A user group with its members, as dialect B and the admin API show it."""

    id: int
    name: str
    description: str | None
    created_at: str
    updated_at: str
    users: list[UserV2]


class GroupsPublic(BaseModel):
    """`{"user_groups": [...]}`: dialect B's user_groups and the admin list."""

    user_groups: list[GroupPublic]


# --- project roles -------------------------------------------------------------------------------------

ProjectRole = Literal["owner", "editor", "viewer"]


class ProjectRoleUpdate(Strict):
    """`PUT /admin/namespaces/{slug}/projects/{project}/members/{user_id}`."""

    role: ProjectRole


class ProjectMember(BaseModel):
    """A user's role on a project (`role` None once removed)."""

    project_id: str
    user_id: int
    role: ProjectRole | None
