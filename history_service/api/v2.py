"""Dialect B: `GET /api/v2/collections/{collection_id}/history/{cursor}`."""

from __future__ import annotations

from aiohttp import web

from history_service.api.keys import HISTORY_KEY
from history_service.schemas import HistoryPageV2
from shared.openapi import documented
from shared.principal import require_principal
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.get("/api/v2/collections/{collection_id}/history/{cursor}")
@documented(
    HistoryPageV2,
    errors={404: "collection not found", 422: "Invalid parameter 'cursor' value \"...\": Invalid cursor"},
)
async def collection_history(request: web.Request) -> web.Response:
    """20 history entries of a collection, newest first, from the cursor on (`0`: the newest)."""
    principal = require_principal(request)
    collection_id, cursor = request.match_info["collection_id"], request.match_info["cursor"]
    return json_model(await request.app[HISTORY_KEY].history_v2(principal, collection_id, cursor))
