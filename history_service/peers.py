"""Clients of peer services whose URL setting may list several replicas (`http://a:1,http://b:2`)."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp import web

from shared.internal import InternalClient
from shared.principal import Principal
from shared.web import peer


class ReplicasClient(InternalClient):
    """An internal client that takes a peer's replicas in turn (in a cluster a Service does this)."""

    def __init__(self, clients: list[InternalClient]) -> None:
        self._replicas = itertools.cycle(clients)

    async def request(
        self, method: str, path: str, *, json: Any = None, principal: Principal | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON body or None) of one call to the next replica."""
        return await next(self._replicas).request(method, path, json=json, principal=principal)


def peer_client(app: web.Application, urls: str) -> InternalClient:
    """A client of the peer at `urls` (one base URL, or several separated by commas)."""
    clients = [peer(app, url.strip()) for url in urls.split(",") if url.strip()]
    if not clients:
        raise ValueError("a peer needs at least one URL")
    return clients[0] if len(clients) == 1 else ReplicasClient(clients)
