"""Typed answers. The access and history models are the services' own; the catalog renders plain dicts
(`catalog_service/views.py`), so its shapes are declared here, strict (`extra="forbid"`), so that a field
the server adds or drops fails the client's round-trip test instead of drifting silently."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

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
from history_service.schemas import HistoryEntry, HistoryPageC, HistoryPageV2
from shared.principal import Principal

__all__ = [
    "ApiKeyCreated",
    "Collection",
    "CollectionDetails",
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
    "VisibilityV2",
]

T = TypeVar("T")


class Strict(BaseModel):
    """A server answer, exactly: no unknown field, no missing one."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Thumbnail(Strict):
    """Dialect C's thumbnail (`url` absent when the asset has none)."""

    assetId: str  # noqa: N815 - the wire name
    url: str | None = None


class Collection(Strict):
    """Dialect C's Collection: the SDK model, with counts."""

    id: str
    name: str
    ownerId: str  # noqa: N815
    assetCount: int  # noqa: N815
    modelCount: int  # noqa: N815
    itemCount: int  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    thumbnail: Thumbnail | None = None


class CollectionDetails(Strict):
    """Dialect B's collection: title, description, category, tags, owner e-mail and visibility."""

    id: str
    title: str
    description: str | None
    category: str | None
    tags: list[str]
    owner: str | None
    media_type: str
    isPublic: bool  # noqa: N815
    created_date: str
    modification_date: str
    original_title: str


class ProjectCollection(Strict):
    """Dialect A's collection: unique name in a project, node-id members, metadata, dataset."""

    id: str
    name: str
    description: str | None
    tags: list[str]
    metadata: dict[str, Any]
    members: list[str]
    datasetId: str | None  # noqa: N815
    projectId: str  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815


class ProjectCollectionPage(Strict):
    """Dialect A's numbered page."""

    collections: list[ProjectCollection]
    page: int
    pageSize: int  # noqa: N815
    total: int
    totalPages: int  # noqa: N815


class MembersChanged(BaseModel):
    """Dialect A's answer to adding (`added`) or removing (`removed`) node ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members: list[str]
    total: int
    added: int | None = None
    removed: int | None = None


class Item(Strict):
    """A registry entry: an asset (with an optional url) or a model."""

    id: str
    name: str
    ownerId: str  # noqa: N815
    createdAt: str  # noqa: N815
    url: str | None = None


class ProjectCreated(Strict):
    """`POST /admin/namespaces/{slug}/projects`."""

    id: str
    namespace: str
    slug: str
    name: str | None
    createdAt: str  # noqa: N815


class Page(BaseModel, Generic[T]):
    """One page of any list, and how to ask for the next one (None: this was the last)."""

    items: list[T]
    next: str | None = None
