"""Typed answers: the services' own answer models (access, history, catalog), strict about unknown
fields, so that a field the server adds or drops fails the client's round-trip test instead of drifting."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from access_service.schemas import (
    ApiKeyCreated,
    GroupPublic,
    GroupsPublic,
    OkV2,
    ProjectMember,
    RevokeResult,
    UserPublic,
    UsersV2,
    UserV2,
    VisibilityV2,
)
from catalog_service.schemas import CollectionPageA as ProjectCollectionPage
from catalog_service.schemas import CollectionPublicA as ProjectCollection
from catalog_service.schemas import CollectionPublicB as CollectionDetails
from catalog_service.schemas import CollectionPublicC as Collection
from catalog_service.schemas import ItemPublic as Item
from catalog_service.schemas import MemberItemPublic as CollectionItem
from catalog_service.schemas import ProjectPublic as ProjectCreated
from catalog_service.schemas import ViewsVerified
from history_service.schemas import HistoryEntry, HistoryPageC, HistoryPageV2
from shared.principal import Principal

__all__ = [
    "ApiKeyCreated",
    "Collection",
    "CollectionDetails",
    "CollectionItem",
    "GroupPublic",
    "GroupsPublic",
    "HistoryEntry",
    "HistoryPageC",
    "HistoryPageV2",
    "Item",
    "MembersChanged",
    "OkV2",
    "Page",
    "Principal",
    "ProjectCollection",
    "ProjectCollectionPage",
    "ProjectCreated",
    "ProjectMember",
    "RevokeResult",
    "UserPublic",
    "UserV2",
    "UsersV2",
    "ViewsVerified",
    "VisibilityV2",
]

T = TypeVar("T")


class MembersChanged(BaseModel):
    """Dialect A's answer to adding (`added`) or removing (`removed`) node ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str]
    total: int
    added: int | None = None
    removed: int | None = None


class Page(BaseModel, Generic[T]):
    """One page of any list, and how to ask for the next one (None: this was the last)."""

    items: list[T]
    next: str | None = None
