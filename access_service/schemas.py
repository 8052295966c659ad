"""Request and response models of access_service."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from shared.principal import Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


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
