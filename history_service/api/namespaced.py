"""Dialect A: `GET /namespaces/{slug}/projects/{projectSlug}/collections/{name}/history`."""

from __future__ import annotations

from aiohttp import web

from history_service.api.keys import HISTORY_KEY
from history_service.schemas import HistoryPageA, HistoryQueryA
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_query
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.get("/namespaces/{slug}/projects/{project_slug}/collections/{name}/history")
@documented(
    HistoryPageA,
    query=HistoryQueryA,
    errors={400: "page or pageSize out of range", 404: "collection, namespace or project not found"},
)
async def collection_history(request: web.Request) -> web.Response:
    """One numbered page of a collection's history, newest first, with totals."""
    principal = require_principal(request)
    query = parse_query(request, HistoryQueryA)
    info = request.match_info
    page = await request.app[HISTORY_KEY].history_a(
        principal, info["slug"], info["project_slug"], info["name"], query
    )
    return json_model(page)
