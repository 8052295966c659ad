"""Admin and registry API: namespaces, projects (admins), assets and models (any caller)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from catalog_service import views
from catalog_service.api.keys import CATALOG_KEY, VERIFIER_KEY
from catalog_service.repository import ItemKind
from catalog_service.schemas import (
    AssetPageC,
    CollectionImport,
    CollectionPublicA,
    Empty,
    ItemCreate,
    ItemListByCollectionQueryC,
    ItemPublic,
    ModelPageC,
    NamespaceCreate,
    NamespacePublic,
    ProjectCreate,
    ProjectPublic,
    ViewsVerified,
    ViewsVerify,
)
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_body, parse_query

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.Response]]


@routes.post("/admin/collections")
@documented(
    CollectionPublicA,
    status=201,
    body=CollectionImport,
    errors={
        400: "a field invalid",
        404: "namespace or project not found",
        409: "the id is taken, or the name is taken in the project",
    },
    admin=True,
)
async def import_collection(request: web.Request) -> web.Response:
    """Create a collection with a given id and owner (admin): how `collections-hub import` keeps ids."""
    data = await parse_body(request, CollectionImport)
    doc = await request.app[CATALOG_KEY].collections.import_collection(require_principal(request), data)
    return web.json_response(views.dialect_a(doc, []), status=201)


@routes.post("/admin/views/verify")
@documented(
    ViewsVerified,
    body=ViewsVerify,
    errors={400: "a field invalid", 403: "admin role required"},
    admin=True,
)
async def verify_views(request: web.Request) -> web.Response:
    """Check the next views of the lists against the rules, and with `repair` repair them (admin):
    `collections-hub views verify` walks every view this way."""
    data = await parse_body(request, ViewsVerify)
    verified = await request.app[VERIFIER_KEY].verify_for(
        require_principal(request), data.after, data.limit, repair=data.repair
    )
    return web.json_response(verified.model_dump())


@routes.post("/admin/namespaces")
@documented(
    NamespacePublic,
    status=201,
    body=NamespaceCreate,
    errors={400: "slug invalid", 409: "slug taken"},
    admin=True,
)
async def create_namespace(request: web.Request) -> web.Response:
    """Create a namespace (admin)."""
    data = await parse_body(request, NamespaceCreate)
    doc = await request.app[CATALOG_KEY].projects.create_namespace(
        require_principal(request), data.slug, data.name
    )
    return web.json_response(
        {"slug": doc["slug"], "name": doc["name"], "createdAt": doc["created_at"]}, status=201
    )


@routes.post("/admin/namespaces/{slug}/projects")
@documented(
    ProjectPublic,
    status=201,
    body=ProjectCreate,
    errors={400: "slug invalid", 404: "namespace not found", 409: "slug taken in the namespace"},
    admin=True,
)
async def create_project(request: web.Request) -> web.Response:
    """Create a project in a namespace (admin)."""
    data = await parse_body(request, ProjectCreate)
    doc = await request.app[CATALOG_KEY].projects.create_project(
        require_principal(request), request.match_info["slug"], data.slug, data.name
    )
    return web.json_response(
        {
            "id": doc["_id"],
            "namespace": doc["namespace"],
            "slug": doc["slug"],
            "name": doc["name"],
            "createdAt": doc["created_at"],
        },
        status=201,
    )


def _kind(request: web.Request) -> ItemKind:
    return "asset" if request.match_info["kind"] == "assets" else "model"


@routes.post("/v1/{kind:assets|models}")
@documented(ItemPublic, status=201, body=ItemCreate, errors={400: "name missing or invalid", 409: "id taken"})
async def create_item(request: web.Request) -> web.Response:
    """Register an asset or a model."""
    data = await parse_body(request, ItemCreate)
    kind = _kind(request)
    doc = await request.app[CATALOG_KEY].items.create_item(
        require_principal(request), kind, data.id, data.name, data.url if kind == "asset" else None
    )
    return web.json_response(views.item(doc), status=201)


def list_handler(kind: ItemKind) -> Handler:
    """GET `/v1/assets?collectionId=` (or models): the same pages as `GET /v1/collections/{id}/assets`."""

    async def handler(request: web.Request) -> web.Response:
        query = parse_query(request, ItemListByCollectionQueryC)
        page = await request.app[CATALOG_KEY].item_lists.page_c(
            require_principal(request), query.collectionId, kind, query.pageSize, query.paginationToken
        )
        return web.json_response(views.item_page_c(kind, page.items, page.next_token))

    handler.__doc__ = (
        f"The {kind}s of `collectionId`, a page at a time: the same answer as"
        f" `GET /v1/collections/{{collectionId}}/{kind}s`."
    )
    errors = {
        400: "collectionId missing, pageSize out of range, or a paginationToken we did not issue",
        404: "collection not found",
    }
    response = AssetPageC if kind == "asset" else ModelPageC
    return documented(response, query=ItemListByCollectionQueryC, errors=errors)(handler)


routes.get("/v1/assets")(list_handler("asset"))
routes.get("/v1/models")(list_handler("model"))


@routes.get("/v1/{kind:assets|models}/{item_id}")
@documented(ItemPublic, errors={404: "not found"})
async def get_item(request: web.Request) -> web.Response:
    """One asset or model."""
    require_principal(request)
    return web.json_response(
        views.item(
            await request.app[CATALOG_KEY].items.get_item(_kind(request), request.match_info["item_id"])
        )
    )


@routes.delete("/v1/{kind:assets|models}/{item_id}")
@documented(Empty, errors={403: "not its owner", 404: "not found"})
async def delete_item(request: web.Request) -> web.Response:
    """Remove an asset or model from the registry (its owner or an admin)."""
    await request.app[CATALOG_KEY].items.delete_item(
        require_principal(request), _kind(request), request.match_info["item_id"]
    )
    return web.json_response({})
