"""Calls between services over internal HTTP: the shared secret, the caller's principal, the request id."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError, ClientSession

from shared.errors import Unavailable
from shared.logs import request_id_var
from shared.metrics import count_upstream_failure
from shared.principal import Principal, internal_headers
from shared.upstreams import Upstream


class InternalClient:
    """A JSON client for one peer service (its replicas taken in turn); unreachable is `Unavailable` (503)."""

    def __init__(self, session: ClientSession, base_urls: str, secret: str) -> None:
        self._session = session
        self._upstream = Upstream(base_urls)
        self._secret = secret

    async def request(
        self, method: str, path: str, *, json: Any = None, principal: Principal | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON body or None) of one call."""
        headers = internal_headers(self._secret, principal, request_id_var.get())
        base_url = self._upstream.next()
        try:
            async with self._session.request(method, f"{base_url}{path}", json=json, headers=headers) as r:
                body = await r.json(content_type=None) if r.content_length != 0 else None
                return r.status, body
        except (ClientError, TimeoutError) as exc:
            count_upstream_failure(base_url)
            raise Unavailable("service unavailable") from exc
        except ValueError as exc:  # an answer that is not JSON: the replica answered, so not counted
            raise Unavailable("service unavailable") from exc
