"""The gateway's app factory: authentication middleware, `/v1/me`, readiness of every service, the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from gateway.authenticator import Authenticator
from gateway.credentials import extract_credentials
from gateway.jwt_verifier import JwtVerifier, load_jwks
from gateway.openapi.pages import add_docs_routes, public_docs_path
from gateway.proxy import forward, no_route
from gateway.ratelimit import RateLimits
from gateway.routing import admin_only, canonical_path, service_for
from gateway.settings import GatewaySettings
from shared.errors import Forbidden, Unauthorized
from shared.metrics import ROUTE_LABEL_KEY
from shared.openapi import documented
from shared.principal import PRINCIPAL_KEY, Principal, require_principal
from shared.responses import json_model
from shared.upstreams import Upstream
from shared.web import add_readiness_check, create_service_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_KEY = web.AppKey("upstream_session", ClientSession)
AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)
UPSTREAMS_KEY = web.AppKey("upstreams", dict[str, Upstream])
GATEWAY_SETTINGS_KEY = web.AppKey("gateway_settings", GatewaySettings)
RATE_LIMITS_KEY = web.AppKey("rate_limits", RateLimits)
# The path as received, once accepted: what the gateway routes, authorises and forwards.
CANONICAL_PATH_KEY = web.RequestKey("canonical_path", str)


# The probes answer anyone; `/metrics` needs the admin role here (services keep theirs in-cluster).
PROBES = frozenset({"/healthz", "/readyz"})


@web.middleware
async def gate_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One gate for every request: a canonical path, rate limits, valid credentials, the admin role."""
    path = canonical_path(request.rel_url.raw_path)
    request[CANONICAL_PATH_KEY] = path
    metrics_port = request.app[GATEWAY_SETTINGS_KEY].metrics_port
    if metrics_port is not None and local_port(request) == metrics_port:
        if path != "/metrics":
            raise no_route()
        return await handler(request)
    limits = request.app[RATE_LIMITS_KEY]
    address = limits.client_address(request)
    limits.admit(limits.per_address, address)
    # The probes, the API description and its page answer anyone (after the per-address limit).
    if path in PROBES or public_docs_path(path):
        return await handler(request)
    limits.admit_failures(address)
    try:
        principal = await request.app[AUTHENTICATOR_KEY].authenticate(extract_credentials(request.headers))
    except Unauthorized:
        limits.count_failure(address)
        raise
    limits.admit(limits.per_credential, f"{principal.user_id}:{principal.key_id or principal.auth}")
    if admin_only(path) and not principal.is_admin:
        raise Forbidden("admin role required")
    request[PRINCIPAL_KEY] = principal
    return await handler(request)


def local_port(request: web.Request) -> int | None:
    """The port this request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else None


@documented(Principal)
async def me(request: web.Request) -> web.Response:
    """`GET /v1/me`: the caller's principal."""
    return json_model(require_principal(request))


# The gateway's own routes, so another method on them is a 405 rather than a 404 from the proxy.
OWN_ROUTES = {"/v1/me": ["GET"]}


async def proxy(request: web.Request) -> web.StreamResponse:
    """Any other path: forward to the service that owns it, or 404."""
    if (allowed := OWN_ROUTES.get(request.path)) is not None:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    path = request[CANONICAL_PATH_KEY]
    service = service_for(path)
    if service is None:
        raise no_route()
    request[ROUTE_LABEL_KEY] = f"proxy:{service}"
    settings = request.app[GATEWAY_SETTINGS_KEY]
    return await forward(
        request.app[SESSION_KEY],
        request.app[UPSTREAMS_KEY][service].next(),
        path,
        request,
        principal=require_principal(request),
        secret=settings.internal_secret.get_secret_value(),
    )


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway app."""
    app = create_service_app(settings, internal_auth=False)
    app.middlewares.append(gate_middleware)
    app[GATEWAY_SETTINGS_KEY] = settings
    app[RATE_LIMITS_KEY] = RateLimits.from_settings(settings)
    app[UPSTREAMS_KEY] = {
        "catalog": Upstream(settings.catalog_url),
        "access": Upstream(settings.access_url),
        "history": Upstream(settings.history_url),
    }

    async def upstream_resource(app: web.Application) -> AsyncIterator[None]:
        session = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=30),
            timeout=ClientTimeout(total=settings.upstream_timeout_seconds),
            auto_decompress=False,
        )
        jwks = await load_jwks(settings.jwt_jwks) if settings.jwt_jwks else None
        app[SESSION_KEY] = session
        app[AUTHENTICATOR_KEY] = Authenticator(
            session,
            app[UPSTREAMS_KEY]["access"],
            settings.internal_secret.get_secret_value(),
            JwtVerifier(settings, jwks),
            settings.auth_cache_ttl_seconds,
        )
        for name, upstream in app[UPSTREAMS_KEY].items():
            for n, url in enumerate(upstream.urls):
                add_readiness_check(app, f"{name}-{n}", _service_ready(session, url))
        yield
        await session.close()
        # Let the connector's transports close before the loop goes away.
        await asyncio.sleep(0)

    app.cleanup_ctx.append(upstream_resource)
    app.router.add_get("/v1/me", me, allow_head=False)
    add_docs_routes(app, own=[web.RouteDef("GET", "/v1/me", me, {})])
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def _service_ready(session: ClientSession, base_url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with session.get(f"{base_url}/readyz") as response:
            if response.status != 200:
                raise ConnectionError(f"{base_url} not ready")

    return check
