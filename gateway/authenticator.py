"""Resolving credentials to a principal through access_service, with a short-lived cache.

The cache lives at most `auth_cache_ttl_seconds` (<= 1s), which is what bounds how long a revoked key
keeps working. Concurrent misses for the same credentials share one call to access_service. A cached
caller holds the principal's forwarding headers too, serialised once when it was resolved rather than on
every request it makes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import ClientError, ClientSession, web

from gateway.credentials import Credentials
from gateway.jwt_verifier import JwtVerifier
from gateway.upstream import header_lines
from shared.errors import Unauthorized, Unavailable
from shared.metrics import Metrics, count_upstream_failure
from shared.principal import Principal, forwarded_headers, internal_headers
from shared.upstreams import Upstream

MAX_CACHE_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the principal, and the headers that carry it to services."""

    principal: Principal
    # The forwarding credential and the principal as JSON, as header lines (`gateway.upstream`): each
    # request adds its own id and content headers after them.
    forwarding_lines: str


FORWARDING_LINES_KEY = web.RequestKey("forwarding_lines", str)


class Authenticator:
    """Credentials in, principal out; 401 for anything access_service does not vouch for."""

    def __init__(
        self,
        session: ClientSession,
        access: Upstream,
        secret: str,
        verifier: JwtVerifier,
        ttl: float,
        *,
        metrics: Metrics,
    ) -> None:
        self._session = session
        self._access = access
        self._secret = secret
        self._verifier = verifier
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._inflight: dict[str, asyncio.Future[Caller]] = {}
        # Looked up once: `labels()` locks and builds its key on every call.
        lookups = metrics.cache_lookups
        self._hits = lookups.labels(metrics.service, "principals", "hit")
        self._misses = lookups.labels(metrics.service, "principals", "miss")

    def cached(self, credentials: Credentials) -> Caller | None:
        """The caller these credentials proved within the last `ttl`, without asking anyone; else None."""
        cached = self._cache.get(credentials.cache_key)
        if cached is not None and cached[0] > time.monotonic():
            self._hits.inc()
            return cached[1]
        return None

    def resolving(self, credentials: Credentials) -> bool:
        """Whether access_service is being asked about these very credentials right now."""
        return credentials.cache_key in self._inflight

    async def resolve(self, credentials: Credentials) -> Caller:
        """The caller these credentials prove, asked of access_service (or of the question already asked
        for the same credentials), bypassing the cache."""
        key = credentials.cache_key
        now = time.monotonic()
        self._misses.inc()
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Caller] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            principal = await self._resolve(credentials)
            caller = Caller(principal, header_lines(forwarded_headers(self._secret, principal, None)))
        except BaseException as exc:  # every waiter on this future hears of it, whatever went wrong
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(caller)
            self._remember(key, caller, now)
            return caller
        finally:
            del self._inflight[key]

    def _remember(self, key: str, caller: Caller, now: float) -> None:
        if self._ttl <= 0:
            return
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache.clear()
        self._cache[key] = (now + self._ttl, caller)

    async def _resolve(self, credentials: Credentials) -> Principal:
        if credentials.kind == "jwt":
            user_id = self._verifier.subject(credentials.token)
            return await self._call("GET", f"/internal/principals/by-user/{user_id}", None)
        body = (
            {"key": credentials.token}
            if credentials.kind == "api_key"
            else {"key_id": credentials.key_id, "secret": credentials.token}
        )
        return await self._call("POST", "/internal/principals/by-api-key", body)

    async def _call(self, method: str, path: str, body: dict[str, str] | None) -> Principal:
        base_url = self._access.next()
        try:
            async with self._session.request(
                method,
                f"{base_url}{path}",
                json=body,
                headers=internal_headers(self._secret, None, None),
            ) as response:
                payload = await response.read()
                status = response.status
        except (ClientError, TimeoutError) as exc:
            count_upstream_failure(base_url)
            raise Unavailable("authentication service unavailable") from exc
        if status == 200:
            return Principal.model_validate_json(payload)
        if status in (401, 422, 400, 404):
            raise Unauthorized("invalid credentials")
        raise Unavailable("authentication service unavailable")


AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)
