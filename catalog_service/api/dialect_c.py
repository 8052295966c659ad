"""Dialect C (`003_f42aff47466038f2.txt`): `/v1/collections`, SDK-style, with assets, models and counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from catalog_service import views
from catalog_service.api.keys import CATALOG_KEY
from catalog_service.repository import ItemKind
from catalog_service.schemas import (
    AssetIdsC,
    AssetPageC,
    CollectionCreateC,
    CollectionEnvelopeC,
    CollectionPageC,
    CollectionUpdateC,
    Empty,
    ItemListQueryC,
    ListQueryC,
    ModelIdsC,
    ModelPageC,
)
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_body, parse_query

routes = web.RouteTableDef()
BASE = "/v1/collections"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def collection(doc: dict[str, object]) -> web.Response:
    """`{"collection": ...}`, the shape of every single-collection answer."""
    return web.json_response({"collection": views.dialect_c(doc)})


@routes.get(BASE)
@documented(
    CollectionPageC,
    query=ListQueryC,
    errors={400: "pageSize out of range, or a paginationToken we did not issue"},
)
async def list_collections(request: web.Request) -> web.Response:
    """A keyset page; `nextPaginationToken` continues it (absent on the last page)."""
    query = parse_query(request, ListQueryC)
    docs, token = await request.app[CATALOG_KEY].collections.list_visible(
        require_principal(request), page_size=query.pageSize, token=query.paginationToken
    )
    body: dict[str, object] = {"collections": [views.dialect_c(doc) for doc in docs]}
    if token is not None:
        body["nextPaginationToken"] = token
    return web.json_response(body)


@routes.post(BASE)
@documented(CollectionEnvelopeC, body=CollectionCreateC, errors={400: "name missing or invalid"})
async def create(request: web.Request) -> web.Response:
    """Create a collection in the caller's personal project."""
    data = await parse_body(request, CollectionCreateC)
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    doc = await catalog.collections.create(
        principal, await catalog.projects.personal_project(principal), name=data.name, unique_name=False
    )
    return collection(doc)


@routes.get(f"{BASE}/{{collection_id}}")
@documented(CollectionEnvelopeC, errors={404: "collection not found"})
async def retrieve(request: web.Request) -> web.Response:
    """One collection."""
    return collection(
        await request.app[CATALOG_KEY].collections.get(
            require_principal(request), request.match_info["collection_id"]
        )
    )


@routes.put(f"{BASE}/{{collection_id}}")
@documented(
    CollectionEnvelopeC,
    body=CollectionUpdateC,
    errors={
        400: "a field invalid, or the thumbnail is not one of its assets",
        403: "the caller may read the collection but not change it",
        404: "collection not found",
    },
)
async def update(request: web.Request) -> web.Response:
    """Rename and/or choose the thumbnail."""
    data = await parse_body(request, CollectionUpdateC)
    doc = await request.app[CATALOG_KEY].collections.update_c(
        require_principal(request),
        request.match_info["collection_id"],
        data.name,
        data.thumbnail.assetId if data.thumbnail else None,
    )
    return collection(doc)


@routes.delete(f"{BASE}/{{collection_id}}")
@documented(
    Empty, errors={403: "the caller may read the collection but not change it", 404: "collection not found"}
)
async def delete(request: web.Request) -> web.Response:
    """Delete the collection."""
    await request.app[CATALOG_KEY].collections.delete(
        require_principal(request), request.match_info["collection_id"]
    )
    return web.json_response({})


def link_handler(kind: ItemKind, *, add: bool) -> Handler:
    """PUT (add) or DELETE (remove) of up to 49 registered assets or models."""
    schema, field = (AssetIdsC, "assetIds") if kind == "asset" else (ModelIdsC, "modelIds")

    async def handler(request: web.Request) -> web.Response:
        data = await parse_body(request, schema)
        doc = await request.app[CATALOG_KEY].membership.link_items(
            require_principal(request),
            request.match_info["collection_id"],
            kind,
            getattr(data, field),
            add=add,
        )
        return collection(doc)

    handler.__doc__ = f"{'Add' if add else 'Remove'} up to 49 {kind}s."
    errors = {
        400: f"1 to 49 ids, each a registered {kind}",
        403: "the caller may read the collection but not change it",
        404: "collection not found",
    }
    return documented(CollectionEnvelopeC, body=schema, errors=errors)(handler)


def list_handler(kind: ItemKind) -> Handler:
    """GET: a keyset page of the collection's assets or models, in the order they were added."""

    async def handler(request: web.Request) -> web.Response:
        query = parse_query(request, ItemListQueryC)
        page = await request.app[CATALOG_KEY].item_lists.page_c(
            require_principal(request),
            request.match_info["collection_id"],
            kind,
            query.pageSize,
            query.paginationToken,
        )
        return web.json_response(views.item_page_c(kind, page.items, page.next_token))

    handler.__doc__ = (
        f"A page of the collection's {kind}s in the order they were added, each as `GET /v1/{kind}s/{{id}}`"
        " shows it; `nextPaginationToken` continues it (absent on the last page)."
    )
    errors = {
        400: "pageSize out of range, or a paginationToken we did not issue",
        404: "collection not found",
    }
    response = AssetPageC if kind == "asset" else ModelPageC
    return documented(response, query=ItemListQueryC, errors=errors)(handler)


ITEM_KINDS: tuple[ItemKind, ...] = ("asset", "model")
for _kind in ITEM_KINDS:
    routes.get(f"{BASE}/{{collection_id}}/{_kind}s")(list_handler(_kind))
    routes.put(f"{BASE}/{{collection_id}}/{_kind}s")(link_handler(_kind, add=True))
    routes.delete(f"{BASE}/{{collection_id}}/{_kind}s")(link_handler(_kind, add=False))
