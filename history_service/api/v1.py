"""Dialect C: `GET /v1/collections/{collection_id}/history?pageSize=&paginationToken=`."""

from __future__ import annotations

from aiohttp import web

from history_service.api.keys import HISTORY_KEY
from history_service.schemas import HistoryPageC, HistoryQueryC
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_query
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.get("/v1/collections/{collection_id}/history")
@documented(
    HistoryPageC,
    query=HistoryQueryC,
    errors={400: "pageSize out of range, or a paginationToken we did not issue", 404: "collection not found"},
)
async def collection_history(request: web.Request) -> web.Response:
    """`pageSize` history entries of a collection, newest first, after `paginationToken`."""
    principal = require_principal(request)
    query = parse_query(request, HistoryQueryC)
    collection_id = request.match_info["collection_id"]
    return json_model(await request.app[HISTORY_KEY].history_c(principal, collection_id, query))
