"""Liveness (`/healthz`) and readiness (`/readyz`: every dependency answers) endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[None]]

READINESS_KEY = web.AppKey("readiness_checks", dict[str, ReadinessCheck])


async def healthz(_request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when every registered dependency check passes within a second, else 503 naming the failures."""
    checks = request.app[READINESS_KEY]
    names = list(checks)
    results = await asyncio.gather(
        *(asyncio.wait_for(checks[name](), timeout=1.0) for name in names), return_exceptions=True
    )
    failed = {name: type(result).__name__ for name, result in zip(names, results, strict=True) if result}
    status = 503 if failed else 200
    return web.json_response(
        {"status": "ready" if not failed else "not ready", "failed": failed}, status=status
    )


def add_health_routes(app: web.Application) -> None:
    """Mount `/healthz` and `/readyz`."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
