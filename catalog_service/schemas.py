"""Request models (strict) for catalog_service, one group per dialect, and the registry/admin models."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from shared.requests import QueryInt

MAX_IDS_PER_CALL = 49  # dialect C's documented limit for assets/models per call
MAX_MEMBERS_PER_CALL = 10_000  # dialect A: a bound on one request's member list
MAX_NAME_LENGTH = 255


def _no_control_characters(value: str) -> str:
    # Category Cc: C0 (NUL, \x1f...), DEL and C1. They break logs and terminals, and \x1f is a key separator.
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _sent_within_length(value: object) -> object:
    """A name's limit holds for what the client sent, before its surrounding whitespace is stripped: the
    API descriptions say `maxLength` of the value sent, so a longer one is refused, never shortened into
    it (the same error as the stripped value's)."""
    if isinstance(value, str) and len(value) > MAX_NAME_LENGTH:
        raise PydanticCustomError(
            "string_too_long",
            "String should have at most {max_length} characters",
            {"max_length": MAX_NAME_LENGTH},
        )
    return value


def _safe_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form metadata may not smuggle MongoDB operators or dotted paths, at any depth."""

    def check(node: Any, depth: int) -> None:
        if depth > 8:
            raise ValueError("metadata nests too deeply")
        if isinstance(node, dict):
            for key, child in node.items():
                if key.startswith("$") or "." in key:
                    raise ValueError(f"metadata key {key!r} may not start with '$' or contain '.'")
                check(child, depth + 1)
        elif isinstance(node, list):
            for child in node:
                check(child, depth + 1)

    check(value, 0)
    return value


Name = Annotated[
    str,
    BeforeValidator(_sent_within_length),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_no_control_characters),
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], Field(max_length=100)]
ItemId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_control_characters)
]
Metadata = Annotated[dict[str, Any], AfterValidator(_safe_metadata)]
NodeIds = Annotated[list[ItemId], Field(max_length=MAX_MEMBERS_PER_CALL)]


class Strict(BaseModel):
    """Wrong types and unknown fields are rejected, never coerced or dropped."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Patch(Strict):
    """A partial update: a field may be left out, but only the fields in `NULLABLE` may be sent as null."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_where_a_value_is_needed(self) -> Patch:
        for field in self.model_fields_set - self.NULLABLE:
            if getattr(self, field) is None:
                raise ValueError(f"{field} may not be null")
        return self


# --- admin and registry ----------------------------------------------------------------------------------
class NamespaceCreate(Strict):
    """`POST /admin/namespaces`."""

    slug: Slug
    name: Name | None = None


class ViewsVerify(Strict):
    """`POST /admin/views/verify`: check (and with `repair`, repair) the list views after `after` (a view
    key as `next` gave it; empty: from the first), `limit` views at a time."""

    after: Annotated[str, Field(max_length=4096)] = ""
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    repair: bool = False


class ProjectCreate(Strict):
    """`POST /admin/namespaces/{slug}/projects`."""

    slug: Slug
    name: Name | None = None


class DatasetCreate(Strict):
    """`POST /namespaces/{slug}/projects/{project}/datasets`."""

    name: Name


class ItemCreate(Strict):
    """`POST /v1/assets` and `POST /v1/models` (`url` only for assets)."""

    name: Name
    id: ItemId | None = None
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None


# --- dialect A -------------------------------------------------------------------------------------------
class CollectionCreateA(Strict):
    """`POST /namespaces/:slug/projects/:projectSlug/collections`."""

    name: Name
    description: Text | None = None
    tags: Tags = []
    metadata: Metadata = {}
    datasetId: ItemId | None = None  # noqa: N815 - the document's field name
    members: NodeIds = []


class CollectionUpdateA(Patch):
    """`PATCH .../collections/:name` (every field optional; `datasetId: null` makes it standalone)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"datasetId", "description"})

    name: Name | None = None
    description: Text | None = None
    tags: Tags | None = None
    metadata: Metadata | None = None
    datasetId: ItemId | None = None  # noqa: N815
    members: NodeIds | None = None


class ListQueryA(BaseModel):
    """`GET .../collections?page=&pageSize=&datasetId=` (query values arrive as strings)."""

    model_config = ConfigDict(extra="ignore")

    page: QueryInt = Field(default=1, ge=1, le=1_000_000, description="Page number (1-based)")
    pageSize: QueryInt = Field(default=50, ge=1, le=200, description="Items per page (max 200)")  # noqa: N815
    datasetId: ItemId | None = Field(default=None, description="Filter by parent dataset")  # noqa: N815


class MembersAdd(Strict):
    """`POST .../members`."""

    add: NodeIds


class MembersRemove(Strict):
    """`DELETE .../members`."""

    remove: NodeIds


# --- dialect B -------------------------------------------------------------------------------------------
# No upper bound here: an over-long title gets the document's own 400 (dialect_b.check_title), not a 422.
TitleB = Annotated[
    str, StringConstraints(min_length=1, max_length=100_000), AfterValidator(_no_control_characters)
]


class CollectionCreateB(Strict):
    """`POST /api/v2/collections` (title length is checked with the document's own message)."""

    title: TitleB
    description: Text | None = None
    category: Annotated[str, StringConstraints(max_length=255)] | None = None
    tags: Tags = []


class CollectionUpdateB(Patch):
    """`PUT /api/v2/collections/:collection_id` (description and category may be cleared with null)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset({"description", "category"})

    title: TitleB | None = None
    description: Text | None = None
    category: Annotated[str, StringConstraints(max_length=255)] | None = None
    tags: Tags | None = None


class AssetRefB(Strict):
    """`POST/DELETE /api/v2/collections/:collection_id/assets`."""

    asset_id: ItemId


# --- dialect C -------------------------------------------------------------------------------------------
class CollectionCreateC(Strict):
    """`POST /v1/collections`."""

    name: Name


class ThumbnailC(Strict):
    """The thumbnail to show: one of the collection's assets."""

    assetId: ItemId  # noqa: N815


class CollectionUpdateC(Patch):
    """`PUT /v1/collections/{id}`."""

    name: Name | None = None
    thumbnail: ThumbnailC | None = None


class AssetIdsC(Strict):
    """`PUT/DELETE /v1/collections/{id}/assets`."""

    assetIds: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_IDS_PER_CALL)]  # noqa: N815


class ModelIdsC(Strict):
    """`PUT/DELETE /v1/collections/{id}/models`."""

    modelIds: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_IDS_PER_CALL)]  # noqa: N815


class ListQueryC(BaseModel):
    """`GET /v1/collections?pageSize=&paginationToken=`."""

    model_config = ConfigDict(extra="ignore")

    pageSize: QueryInt = Field(default=10, ge=1, le=100, description="Collections per page (1-100)")  # noqa: N815
    paginationToken: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(  # noqa: N815
        default=None, description="The `nextPaginationToken` of the previous page"
    )


class ItemListQueryC(BaseModel):
    """`GET /v1/collections/{id}/assets?pageSize=&paginationToken=` (and `/models`)."""

    model_config = ConfigDict(extra="ignore")

    pageSize: QueryInt = Field(default=10, ge=1, le=100, description="Items per page (1-100)")  # noqa: N815
    paginationToken: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(  # noqa: N815
        default=None, description="The `nextPaginationToken` of the previous page"
    )


class ItemListByCollectionQueryC(ItemListQueryC):
    """`GET /v1/assets?collectionId=&pageSize=&paginationToken=` (and `/v1/models`): the same page."""

    collectionId: ItemId = Field(description="The collection whose items to list (required)")  # noqa: N815


# --- answers (what catalog_service.views builds; the OpenAPI documents describe them) ---------------------
class Answer(BaseModel):
    """An answer's fields, exactly: a response carrying anything else breaks its description."""

    model_config = ConfigDict(extra="forbid")


class CollectionPublicA(Answer):
    """A collection in dialect A."""

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


class CollectionPageA(Answer):
    """`GET .../collections`: one numbered page and the totals."""

    collections: list[CollectionPublicA]
    page: int
    pageSize: int  # noqa: N815
    total: int
    totalPages: int  # noqa: N815


class MembersAddedA(Answer):
    """`POST .../members`: the members after the call, how many were new, how many there are."""

    members: list[str]
    added: int
    total: int


class MembersRemovedA(Answer):
    """`DELETE .../members`: the members left, how many were removed, how many there are."""

    members: list[str]
    removed: int
    total: int


class DeletedA(Answer):
    """`DELETE .../collections/:name`."""

    success: bool


class DatasetPublic(Answer):
    """A dataset of a project."""

    id: str
    name: str
    projectId: str  # noqa: N815
    createdAt: str  # noqa: N815


class CollectionPublicB(Answer):
    """A collection in dialect B, as document 002 shows it."""

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


class CollectionEnvelopeB(Answer):
    """`{"collection": {...}}`."""

    collection: CollectionPublicB


class CollectionIdsB(Answer):
    """`GET /api/v2/collections`: the ids of the collections the caller may see."""

    collections: list[str]


class DeletedB(Answer):
    """`DELETE /api/v2/collections/:collection_id`."""

    collection: bool


class MessageB(Answer):
    """`{"message": "..."}`: the answer to adding or removing an asset."""

    message: str


class ThumbnailPublicC(Answer):
    """The collection's thumbnail: one of its assets, and that asset's url (empty when it has none)."""

    assetId: str  # noqa: N815
    url: str = Field(description="the asset's url; empty when it has none (document 003: a string)")


class CollectionPublicC(Answer):
    """A collection in dialect C (document 003's `Collection`)."""

    id: str
    name: str
    ownerId: str  # noqa: N815
    assetCount: int  # noqa: N815
    modelCount: int  # noqa: N815
    itemCount: int  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    thumbnail: ThumbnailPublicC | SkipJsonSchema[None] = Field(default=None, description="absent when none")


class CollectionEnvelopeC(Answer):
    """`{"collection": {...}}`."""

    collection: CollectionPublicC


class CollectionPageC(Answer):
    """`GET /v1/collections`: a page, and the token of the next one (absent on the last page)."""

    collections: list[CollectionPublicC]
    nextPaginationToken: str | SkipJsonSchema[None] = Field(  # noqa: N815
        default=None, description="absent on the last page"
    )


class Empty(Answer):
    """`{}`: the answer to a delete in dialect C and the registry."""


class ViewDrift(Answer):
    """One view that differed from the rules: its key (reader, project, dataset joined by `/`) and the
    collections it lacked, held wrongly, or held twice."""

    view: str
    missing: list[str]
    extra: list[str]
    twice: list[str]


class ViewsVerified(Answer):
    """What a verify call checked; `next` is where the next call starts (null: every view was checked)."""

    checked: int
    drifted: list[ViewDrift]
    repaired: bool
    next: str | None


class ItemPublic(Answer):
    """An asset or model of the registry (`url` only on assets that have one)."""

    id: str
    name: str
    ownerId: str  # noqa: N815
    createdAt: str  # noqa: N815
    url: str | SkipJsonSchema[None] = Field(default=None, description="absent when none")


class MemberItemPublic(ItemPublic):
    """An asset or model of a collection, as `GET /v1/assets/{id}` shows it; one the registry has deleted
    since (the collection keeps its id) is shown as it was, with `deleted: true`."""

    deleted: bool | SkipJsonSchema[None] = Field(default=None, description="absent unless deleted")


class AssetPageC(Answer):
    """`GET /v1/collections/{id}/assets`: a page in the order they were added, and the next page's token."""

    assets: list[MemberItemPublic]
    nextPaginationToken: str | SkipJsonSchema[None] = Field(  # noqa: N815
        default=None, description="absent on the last page"
    )


class ModelPageC(Answer):
    """`GET /v1/collections/{id}/models`: a page in the order they were added, and the next page's token."""

    models: list[MemberItemPublic]
    nextPaginationToken: str | SkipJsonSchema[None] = Field(  # noqa: N815
        default=None, description="absent on the last page"
    )


class AssetResultsB(Answer):
    """A page of 20 assets in the order they were added; `next_cursor` continues it (null: the last)."""

    results: list[MemberItemPublic]
    next_cursor: str | None


class AssetPageB(Answer):
    """`GET /api/v2/collections/:collection_id/assets[/:cursor]`."""

    assets: AssetResultsB


class NamespacePublic(Answer):
    """A namespace."""

    slug: str
    name: str | None
    createdAt: str  # noqa: N815


class ProjectPublic(Answer):
    """A project of a namespace."""

    id: str
    namespace: str
    slug: str
    name: str | None
    createdAt: str  # noqa: N815


class VisibilityShown(Strict):
    """`POST /internal/collections/{id}/visibility`: access_service's flag at its document's version."""

    is_public: bool
    version: Annotated[int, Field(ge=1)]


class CollectionImport(Strict):
    """`POST /admin/collections`: a collection with a given id and owner, as an import brings it (admins)."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    namespace: Slug
    project: Slug
    owner_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    owner_email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    name: Name
    # False for a title from dialect B or C, which may repeat in the project (it claims no unique name).
    unique_name: bool = True
    description: Text | None = None
    category: Annotated[str, StringConstraints(max_length=255)] | None = None
    tags: Tags = []
    metadata: Metadata = {}
