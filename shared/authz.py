"""The authorization contract: what access_service decides, and how other services ask it.

Rules (issue 4): a caller may read a collection if it is an admin, the owner, a shared user, in a shared
group, a guest on it, holds any role on its project, or the collection is public; may change it as the
owner, an editor or owner on the project, or an admin; only the owner or an admin changes visibility and
shares. Anyone else gets the dialect's not-found answer.

Admins and owners are decided locally (the caller's principal and the collection's owner are at hand);
everything else is one call to access_service, cached for at most `ttl` seconds (<= 1s, so a revoked
share stops working within a second of the revoking call returning).
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.errors import Unavailable
from shared.internal import InternalClient
from shared.metrics import count_cache_lookup
from shared.principal import Principal


class CollectionRef(BaseModel):
    """What a decision needs to know about a collection: its id, owner and project."""

    model_config = ConfigDict(frozen=True)

    collection_id: str
    owner_id: int
    project_id: str


class Permissions(BaseModel):
    """What one caller may do with one collection."""

    model_config = ConfigDict(frozen=True)

    read: bool = False
    write: bool = False
    share: bool = False


class PermissionsQuery(BaseModel):
    """`POST /internal/permissions` on access_service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    collection: CollectionRef


class ProjectRole(BaseModel):
    """`GET /internal/project-roles/{project_id}/{user_id}`: the user's role on a project, if any."""

    model_config = ConfigDict(frozen=True)

    role: Literal["owner", "editor", "viewer"] | None = None

    @property
    def can_write(self) -> bool:
        """Owners and editors change what is in the project."""
        return self.role in ("owner", "editor")


ALL = Permissions(read=True, write=True, share=True)


class AccessDecisions:
    """Asks access_service what a caller may do, caching each answer briefly."""

    def __init__(self, client: InternalClient, ttl: float = 0.5) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[tuple[int, CollectionRef], tuple[float, Permissions]] = {}

    async def permissions(
        self, principal: Principal, collection: CollectionRef, need: Literal["read", "write"] = "read"
    ) -> Permissions:
        """What the caller may do with the collection; a cached answer serves only if it allows `need`
        (a cache may hold an allow for the TTL, never a denial: a grant shows on the next request)."""
        if principal.is_admin or principal.user_id == collection.owner_id:
            return ALL
        key = (principal.user_id, collection)
        now = time.monotonic()
        cached = self._cache.get(key)
        fresh = cached is not None and cached[0] > now and getattr(cached[1], need)
        count_cache_lookup("access_decisions", hit=bool(fresh))
        if fresh and cached is not None:
            return cached[1]
        query = PermissionsQuery(user_id=principal.user_id, collection=collection)
        status, body = await self._client.request("POST", "/internal/permissions", json=query.model_dump())
        if status != 200:
            raise Unavailable("access decision unavailable")
        permissions = Permissions.model_validate(body)
        # Only an allow is kept: a grant must show on the very next request, a revocation within the TTL.
        if permissions.read:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, permissions)
        return permissions

    async def user(self, user_id: int) -> Principal | None:
        """The stored user (for its e-mail address), or None when access_service knows no such user."""
        status, body = await self._client.request("GET", f"/internal/principals/by-user/{user_id}")
        if status == 401:  # access_service's answer for an unknown user
            return None
        if status != 200:
            raise Unavailable("access decision unavailable")
        return Principal.model_validate(body)

    async def project_role(self, principal: Principal, project_id: str) -> ProjectRole:
        """The caller's role on a project (admins act as owners everywhere)."""
        if principal.is_admin:
            return ProjectRole(role="owner")
        status, body = await self._client.request(
            "GET", f"/internal/project-roles/{project_id}/{principal.user_id}"
        )
        if status != 200:
            raise Unavailable("access decision unavailable")
        return ProjectRole.model_validate(body)
