"""Internal routes for operators (internal secret required, not routed by the gateway)."""

from __future__ import annotations

from aiohttp import web

from history_service.api.keys import CONSUMER_KEY
from shared.responses import json_model

routes = web.RouteTableDef()


@routes.post("/internal/history/dead-letters/replay")
async def replay_dead_letters(request: web.Request) -> web.Response:
    """Record the dead-lettered events that validate now (after a long outage); keep the poison ones."""
    return json_model(await request.app[CONSUMER_KEY].replay_dead_letters())
