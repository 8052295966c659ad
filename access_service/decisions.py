"""Authorization decisions (shared/authz.py's contract): who may read, write and share a collection.

A decision reads two documents, in parallel: the user (role, groups, project roles) and the collection's
access document (public flag, shared users and guests, shared groups). Nothing is cached here, so a
revoked share is refused by the very next decision.
"""

from __future__ import annotations

import asyncio

from access_service.repository import PROJECT_ROLE_FIELDS, AccessRepository
from shared.authz import ALL, CollectionRef, Permissions, ProjectRole
from shared.mongo import Document

# Project roles that may change a collection; every project role may read it.
WRITE_ROLES = frozenset({"owner", "editor"})


def project_role(user: Document, project_id: str) -> str | None:
    """The user's role on the project, or None."""
    for role, field in PROJECT_ROLE_FIELDS.items():
        if project_id in user.get(field, []):
            return role
    return None


def decide(user: Document | None, access: Document | None, collection: CollectionRef) -> Permissions:
    """What this stored user may do with the collection, given its access document (None: never shared)."""
    if user is None:
        return Permissions()
    if user["role"] == "admin" or user["_id"] == collection.owner_id:
        return ALL
    role = project_role(user, collection.project_id)
    write = role in WRITE_ROLES
    shared = access is not None and (
        bool(access.get("is_public"))
        or user["_id"] in access.get("user_ids", [])
        or not set(user.get("group_ids", [])).isdisjoint(access.get("group_ids", []))
    )
    return Permissions(read=write or role is not None or shared, write=write, share=False)


class Decisions:
    """Answers `/internal/permissions` and `/internal/project-roles`."""

    def __init__(self, repository: AccessRepository) -> None:
        self.repository = repository

    async def permissions(self, user_id: int, collection: CollectionRef) -> Permissions:
        """What the user may do with the collection (two reads, issued together)."""
        user, access = await asyncio.gather(
            self.repository.user_by_id(user_id), self.repository.access_of(collection.collection_id)
        )
        return decide(user, access, collection)

    async def project_role(self, user_id: int, project_id: str) -> ProjectRole:
        """The user's role on one project (admins hold `owner` everywhere); one read."""
        user = await self.repository.user_by_id(user_id)
        if user is None:
            return ProjectRole()
        if user["role"] == "admin":
            return ProjectRole(role="owner")
        return ProjectRole.model_validate({"role": project_role(user, project_id)})
