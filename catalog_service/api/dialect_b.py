"""Dialect B (`002_1e286dbb4f242d5b.txt`): `/api/v2/collections`, the catalog part (access has the rest)."""

from __future__ import annotations

from aiohttp import web

from catalog_service import views
from catalog_service.api.keys import CATALOG_KEY
from catalog_service.schemas import (
    AssetPageB,
    AssetRefB,
    CollectionCreateB,
    CollectionEnvelopeB,
    CollectionIdsB,
    CollectionUpdateB,
    DeletedB,
    MessageB,
)
from shared.errors import Invalid
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_body

routes = web.RouteTableDef()
TITLE_LIMIT = 255


def check_title(title: str | None) -> None:
    """The document's own message for an over-long title (400, not the 422 of a missing one)."""
    if title is not None and len(title) > TITLE_LIMIT:
        raise Invalid("Title is too long (maximum is 255 characters)")


@routes.get("/api/v2/collections")
@documented(CollectionIdsB)
async def list_ids(request: web.Request) -> web.Response:
    """Ids of the collections the caller may see."""
    ids = await request.app[CATALOG_KEY].collections.visible_ids(require_principal(request))
    return web.json_response({"collections": ids})


@routes.post("/api/v2/collections")
@documented(
    CollectionEnvelopeB,
    body=CollectionCreateB,
    errors={400: "Title is too long (maximum is 255 characters)", 422: "Missing parameters"},
)
async def create(request: web.Request) -> web.Response:
    """Create a collection in the caller's personal project (200, as the document shows)."""
    data = await parse_body(request, CollectionCreateB)
    check_title(data.title)
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    doc = await catalog.collections.create(
        principal,
        await catalog.projects.personal_project(principal),
        name=data.title,
        unique_name=False,
        description=data.description,
        category=data.category,
        tags=data.tags,
    )
    return web.json_response({"collection": views.dialect_b(doc)})


@routes.get("/api/v2/collections/{collection_id}")
@documented(CollectionEnvelopeB, errors={404: "collection not found"})
async def get(request: web.Request) -> web.Response:
    """One collection."""
    doc = await request.app[CATALOG_KEY].collections.get(
        require_principal(request), request.match_info["collection_id"]
    )
    return web.json_response({"collection": views.dialect_b(doc)})


@routes.put("/api/v2/collections/{collection_id}")
@documented(
    CollectionEnvelopeB,
    body=CollectionUpdateB,
    errors={
        400: "Title is too long (maximum is 255 characters)",
        403: "the caller may read the collection but not change it",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def update(request: web.Request) -> web.Response:
    """Update title, description, category and/or tags."""
    data = await parse_body(request, CollectionUpdateB)
    check_title(data.title)
    changes = data.model_dump(exclude_unset=True)
    if "title" in changes:
        changes["name"] = changes.pop("title")
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    collection_id = request.match_info["collection_id"]
    doc = (
        await catalog.collections.update(principal, collection_id, changes)
        if changes
        else await catalog.collections.get(principal, collection_id)
    )
    return web.json_response({"collection": views.dialect_b(doc)})


@routes.delete("/api/v2/collections/{collection_id}")
@documented(
    DeletedB,
    errors={403: "the caller may read the collection but not change it", 404: "collection not found"},
)
async def delete(request: web.Request) -> web.Response:
    """Delete the collection."""
    await request.app[CATALOG_KEY].collections.delete(
        require_principal(request), request.match_info["collection_id"]
    )
    return web.json_response({"collection": True})


@routes.get("/api/v2/collections/{collection_id}/assets")
@routes.get("/api/v2/collections/{collection_id}/assets/{cursor}")
@documented(
    AssetPageB,
    errors={404: "collection not found", 422: "Invalid parameter 'cursor' value \"...\": Invalid cursor"},
)
async def list_assets(request: web.Request) -> web.Response:
    """20 assets of the collection in the order they were added, from the cursor on (`0` or none: first)."""
    page = await request.app[CATALOG_KEY].item_lists.page_b(
        require_principal(request),
        request.match_info["collection_id"],
        request.match_info.get("cursor", "0"),
    )
    return web.json_response(views.asset_page_b(page.items, page.next_token))


@routes.post("/api/v2/collections/{collection_id}/assets")
@documented(
    MessageB,
    body=AssetRefB,
    errors={
        400: "asset not found",
        403: "the caller may read the collection but not change it",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def add_asset(request: web.Request) -> web.Response:
    """Add a registered asset (400 `asset not found` for an unknown one)."""
    data = await parse_body(request, AssetRefB)
    await request.app[CATALOG_KEY].membership.link_items(
        require_principal(request), request.match_info["collection_id"], "asset", [data.asset_id], add=True
    )
    return web.json_response({"message": "asset successfully added to collection"})


@routes.delete("/api/v2/collections/{collection_id}/assets")
@documented(
    MessageB,
    body=AssetRefB,
    errors={
        400: "asset not found",
        403: "the caller may read the collection but not change it",
        404: "collection not found",
        422: "Missing parameters",
    },
)
async def remove_asset(request: web.Request) -> web.Response:
    """Remove an asset (400 `asset not found` for an unknown one)."""
    data = await parse_body(request, AssetRefB)
    await request.app[CATALOG_KEY].membership.link_items(
        require_principal(request), request.match_info["collection_id"], "asset", [data.asset_id], add=False
    )
    return web.json_response({"message": "asset successfully removed from collection"})
