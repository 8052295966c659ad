"""Internal API for access_service and history_service (internal secret required, no principal)."""

from __future__ import annotations

from aiohttp import web

from catalog_service.api.keys import CATALOG_KEY
from catalog_service.repository import ACCESS_VERSION, WITHOUT_MEMBERS
from catalog_service.schemas import VisibilityShown
from catalog_service.service import collection_not_found
from shared.catalog_directory import VisibilityFacts
from shared.errors import NotFound
from shared.mongo import Document
from shared.requests import parse_body

routes = web.RouteTableDef()


def ref(doc: Document) -> web.Response:
    """What peers need to know about a collection to decide on it."""
    return web.json_response(
        {
            "collection_id": doc["_id"],
            "owner_id": doc["owner_id"],
            "project_id": doc["project_id"],
            "name": doc["name"],
            "access_version": int(doc.get(ACCESS_VERSION, 0)),
        }
    )


@routes.get("/internal/projects/{slug}/{project}")
async def project(request: web.Request) -> web.Response:
    """A project's id by its slugs."""
    doc = await request.app[CATALOG_KEY].projects.project(
        request.match_info["slug"], request.match_info["project"]
    )
    return web.json_response({"project_id": doc["_id"]})


@routes.get("/internal/collections/{collection_id}")
async def collection(request: web.Request) -> web.Response:
    """A live collection's owner and project."""
    doc = await request.app[CATALOG_KEY].repo.collection(request.match_info["collection_id"], WITHOUT_MEMBERS)
    if doc is None:
        raise collection_not_found()
    return ref(doc)


@routes.post("/internal/collections/{collection_id}/visibility")
async def visibility(request: web.Request) -> web.Response:
    """access_service's new public flag for a collection, applied unless a newer version was."""
    data = await parse_body(request, VisibilityShown)
    applied = await request.app[CATALOG_KEY].repo.apply_visibility(
        request.match_info["collection_id"], data.is_public, data.version
    )
    return web.json_response({"applied": applied})


@routes.post("/internal/visibility/facts")
async def visibility_facts(request: web.Request) -> web.Response:
    """Shares, group memberships and project roles from access_service; access versions and lists follow
    before the answer."""
    data = await parse_body(request, VisibilityFacts)
    applied = await request.app[CATALOG_KEY].collections.access_changed(list(data.facts))
    return web.json_response({"applied": applied})


@routes.get("/internal/collections/by-name/{slug}/{project}/{name}")
async def collection_by_name(request: web.Request) -> web.Response:
    """A live collection by namespace, project and name."""
    catalog = request.app[CATALOG_KEY]
    try:
        project_doc = await catalog.projects.project(
            request.match_info["slug"], request.match_info["project"]
        )
    except NotFound as exc:
        raise collection_not_found() from exc
    collection_id = await catalog.lookup.resolve_name(project_doc["_id"], request.match_info["name"])
    doc = await catalog.repo.collection(collection_id, WITHOUT_MEMBERS)
    if doc is None:
        raise collection_not_found()
    return ref(doc)
