"""Request and response models of history_service: one history entry shape, three page shapes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.requests import QueryInt

# Dialect B answers 20 entries a page (its document shows no page size parameter).
PAGE_SIZE_V2 = 20


class Target(BaseModel):
    """A target's fields, exactly: the stored shape must match one kind and no other."""

    model_config = ConfigDict(extra="forbid")


class UserTarget(Target):
    """A user named by an event, as dialect B shows it."""

    id: int | str
    first_name: str | None
    last_name: str | None


class CollectionTarget(Target):
    """The collection an event is about: its integer id, our string id and its title."""

    id: int
    elasticsearch_id: str
    title: str | None


class GroupTarget(Target):
    """A user group named by an event."""

    id: int | str
    name: str | None


class ItemTarget(Target):
    """Any other entity named by an event (an asset, model, node, project...): its id."""

    id: int | str


class EventTarget(BaseModel):
    """One entity an event concerns: `User`, `UserGroup`, `Asset`, `Model`, `Node`, `Collection`..."""

    target_type: str
    target: UserTarget | CollectionTarget | GroupTarget | ItemTarget


class HistoryEntry(BaseModel):
    """One event of a collection's history, the same in every dialect."""

    id: int
    user_id: int
    event_type: str
    created_at: str
    updated_at: str
    event_targets: list[EventTarget]


class HistoryResultsV2(BaseModel):
    """Dialect B's page: newest first, and the cursor of the next page (None on the last)."""

    results: list[HistoryEntry]
    next_cursor: str | None


class HistoryPageV2(BaseModel):
    """`GET /api/v2/collections/{id}/history/{cursor}`."""

    history: HistoryResultsV2


class CamelModel(BaseModel):
    """Fields written in snake_case here and in camelCase on the wire."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)


class HistoryQueryA(CamelModel):
    """Dialect A's query: `page` (1-based) and `pageSize` (default 50, at most 200)."""

    model_config = ConfigDict(extra="forbid")

    page: QueryInt = Field(default=1, ge=1, le=1_000_000, description="Page number (1-based)")
    page_size: QueryInt = Field(
        default=50, ge=1, le=200, alias="pageSize", description="Entries per page (max 200)"
    )


class HistoryPageA(CamelModel):
    """`GET /namespaces/{slug}/projects/{projectSlug}/collections/{name}/history`."""

    history: list[HistoryEntry]
    page: int
    page_size: int = Field(alias="pageSize")
    total: int
    total_pages: int = Field(alias="totalPages")


class HistoryQueryC(CamelModel):
    """Dialect C's query: `pageSize` (1-100, default 10) and the `paginationToken` of the previous page."""

    model_config = ConfigDict(extra="forbid")

    page_size: QueryInt = Field(
        default=10, ge=1, le=100, alias="pageSize", description="Entries per page (1-100)"
    )
    pagination_token: str | None = Field(
        default=None, alias="paginationToken", description="The `nextPaginationToken` of the previous page"
    )


class HistoryPageC(CamelModel):
    """`GET /v1/collections/{id}/history`: no `nextPaginationToken` on the last page (as C's list)."""

    data: list[HistoryEntry]
    next_pagination_token: str | None = Field(
        default=None, alias="nextPaginationToken", exclude_if=lambda token: token is None
    )


class DeadLetterReplay(BaseModel):
    """`POST /internal/history/dead-letters/replay`: letters recorded and removed, and poison ones kept."""

    replayed: int
    kept: int
