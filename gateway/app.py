"""The gateway's app factory: its one middleware, `/v1/me`, readiness of every service, the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, web

from gateway.authenticator import AUTHENTICATOR_KEY, FORWARDING_LINES_KEY, Authenticator
from gateway.jwt_verifier import JwtVerifier, load_jwks
from gateway.middleware import CANONICAL_PATH_KEY, GatewayMiddleware
from gateway.openapi.pages import add_docs_routes
from gateway.proxy import forward, no_route, upstream_pool, upstream_session
from gateway.ratelimit import RateLimits
from gateway.routing import service_for
from gateway.settings import GatewaySettings
from gateway.upstream import UpstreamPool
from shared.errors import error_middleware
from shared.metrics import METRICS_KEY, ROUTE_LABEL_KEY, metrics_middleware
from shared.openapi import documented
from shared.principal import Principal, require_principal
from shared.responses import json_model
from shared.tracing import configure_tracing
from shared.upstreams import Upstream
from shared.web import (
    add_readiness_check,
    create_service_app,
    hide_server_banner,
    relay_wakeup_middleware,
    request_context_middleware,
)

SESSION_KEY = web.AppKey("upstream_session", ClientSession)
POOL_KEY = web.AppKey("upstream_pool", UpstreamPool)
UPSTREAMS_KEY = web.AppKey("upstreams", dict[str, Upstream])
GATEWAY_SETTINGS_KEY = web.AppKey("gateway_settings", GatewaySettings)
RATE_LIMITS_KEY = web.AppKey("rate_limits", RateLimits)
# The shared middlewares `gateway.middleware.GatewayMiddleware` stands in for (the relay's wake-up has
# nothing to wake here); any other one `create_service_app` installs (tracing's) stays.
REPLACED_MIDDLEWARES = (
    request_context_middleware,
    metrics_middleware,
    error_middleware,
    relay_wakeup_middleware,
)


@documented(Principal)
async def me(request: web.Request) -> web.Response:
    """`GET /v1/me`: the caller's principal."""
    return json_model(require_principal(request))


# The gateway's own routes, so another method on them is a 405 rather than a 404 from the proxy.
OWN_ROUTES = {"/v1/me": ["GET"]}


def proxy_for(app: web.Application) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The catch-all handler: any other path is forwarded to the service that owns it, or 404. It reads
    the app it closes over, not `request.app`: `gateway.front` calls it without the router."""

    async def proxy(request: web.Request) -> web.StreamResponse:
        path = request[CANONICAL_PATH_KEY]
        if (allowed := OWN_ROUTES.get(path)) is not None:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        service = service_for(path)
        if service is None:
            raise no_route()
        request[ROUTE_LABEL_KEY] = f"proxy:{service}"
        return await forward(
            app[POOL_KEY],
            app[UPSTREAMS_KEY][service].next(),
            path,
            request,
            request[FORWARDING_LINES_KEY],
        )

    return proxy


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway app."""
    app = create_service_app(settings, internal_auth=False)
    for replaced in REPLACED_MIDDLEWARES:
        app.middlewares.remove(replaced)
    # The gateway's middleware (and the proxy, for answers it streams) name the server: a prepare signal
    # per answer cost ~2 % of the gateway's time.
    app.on_response_prepare.remove(hide_server_banner)
    limits = RateLimits.from_settings(settings)
    middleware = GatewayMiddleware(
        app,
        app[METRICS_KEY],
        limits,
        metrics_port=settings.metrics_port,
        traced=configure_tracing(settings.service_name),  # already set up: says whether it is on
    )
    app.middlewares.append(middleware)
    app[GATEWAY_SETTINGS_KEY] = settings
    app[RATE_LIMITS_KEY] = limits
    app[UPSTREAMS_KEY] = {
        "catalog": Upstream(settings.catalog_url),
        "access": Upstream(settings.access_url),
        "history": Upstream(settings.history_url),
    }

    async def upstream_resource(app: web.Application) -> AsyncIterator[None]:
        session = upstream_session(settings.upstream_timeout_seconds)
        jwks = await load_jwks(settings.jwt_jwks) if settings.jwt_jwks else None
        pool = upstream_pool(settings.upstream_timeout_seconds)
        app[SESSION_KEY] = session
        app[POOL_KEY] = pool
        app[AUTHENTICATOR_KEY] = Authenticator(
            session,
            app[UPSTREAMS_KEY]["access"],
            settings.internal_secret.get_secret_value(),
            JwtVerifier(settings, jwks),
            settings.auth_cache_ttl_seconds,
            metrics=app[METRICS_KEY],
        )
        for name, upstream in app[UPSTREAMS_KEY].items():
            for n, url in enumerate(upstream.urls):
                add_readiness_check(app, f"{name}-{n}", _service_ready(session, url))
        yield
        await pool.close()
        await session.close()
        # Let the connector's transports close before the loop goes away.
        await asyncio.sleep(0)

    app.cleanup_ctx.append(upstream_resource)
    app.router.add_get("/v1/me", me, allow_head=False)
    add_docs_routes(app, own=[web.RouteDef("GET", "/v1/me", me, {})])
    app.router.add_route("*", "/{tail:.*}", proxy_for(app))
    for route in app.router.routes():
        # aiohttp runs a route's `Expect` handler before any middleware and has no app-wide one nor a public
        # setter: its default answers anything but `100-continue` with a plain-text 417 that names the
        # server and quotes the value (issue 22), for the routes `shared.web` and the docs pages add too.
        route._expect_handler = middleware.expect
    return app


def _service_ready(session: ClientSession, base_url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with session.get(f"{base_url}/readyz") as response:
            if response.status != 200:
                raise ConnectionError(f"{base_url} not ready")

    return check
