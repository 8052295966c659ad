"""The authorization contract: what access_service decides, and how other services ask it.

Rules (issue 4): a caller may read a collection if it is an admin, the owner, a shared user, in a shared
group, a guest on it, holds any role on its project, or the collection is public; may change it as the
owner, an editor or owner on the project, or an admin; only the owner or an admin changes visibility and
shares. Anyone else gets the dialect's not-found answer.

Admins and owners are decided locally (the caller's principal and the collection's owner are at hand);
everything else is one call to access_service, whose allow is cached for at most `ttl` seconds (<= 1 s)
and, for reads, only while the collection's access version is the one it was decided at
(`AccessDecisions`): a revoked share stops working from the very next request.
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
    """What a decision needs to know about a collection: its id, owner and project; and, when the request
    read the collection's document, the access version stored there (None: not read with this request)."""

    model_config = ConfigDict(frozen=True)

    collection_id: str
    owner_id: int
    project_id: str
    # access_service's version of the collection's access document (public flag, shared users, guests
    # and groups) as catalog last stored it: every change to any of them raises it before it is answered.
    access_version: int | None = None


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
    """Asks access_service what a caller may do, caching each allow briefly.

    A cached allow to read serves only a request that read the collection's document and found there the
    access version the allow was decided at (`CollectionRef.access_version`, read before the decision was
    asked): access_service raises that version on the document before it answers any change to the
    collection's access (private, unshare of a user, guest or group), so such a revocation holds from the
    very next request on every replica, at no cost (the request reads the document anyway). What the
    version does not cover, a user's own loss of a group or a project role, holds within the TTL (<= 1 s).
    A write is never allowed by the collection's access document (only ownership, admin or a project
    role, docs/access.md), so a cached allow to write needs no version.
    """

    def __init__(self, client: InternalClient, ttl: float = 0.5) -> None:
        self._client = client
        self._ttl = ttl
        # (user, collection, owner, project) -> (expires, access version decided at, permissions)
        self._cache: dict[tuple[int, str, int, str], tuple[float, int | None, Permissions]] = {}

    async def permissions(
        self, principal: Principal, collection: CollectionRef, need: Literal["read", "write"] = "read"
    ) -> Permissions:
        """What the caller may do with the collection; a cached answer serves only if it allows `need`, and
        to read only at the access version it was decided at (never a denial: a grant shows at once)."""
        if principal.is_admin or principal.user_id == collection.owner_id:
            return ALL
        key = (principal.user_id, collection.collection_id, collection.owner_id, collection.project_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        fresh = (
            cached is not None
            and cached[0] > now
            and getattr(cached[2], need)
            and (
                need == "write"
                or (collection.access_version is not None and cached[1] == collection.access_version)
            )
        )
        count_cache_lookup("access_decisions", hit=bool(fresh))
        if fresh and cached is not None:
            return cached[2]
        query = PermissionsQuery(user_id=principal.user_id, collection=collection)
        status, body = await self._client.request(
            "POST", "/internal/permissions", json=query.model_dump(exclude={"collection": {"access_version"}})
        )
        if status != 200:
            raise Unavailable("access decision unavailable")
        permissions = Permissions.model_validate(body)
        # Only an allow is kept: a grant must show on the very next request. The version is the one read
        # before the question was asked, so any revocation after that read has raised it past this entry.
        if permissions.read:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, collection.access_version, permissions)
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
