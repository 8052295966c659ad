"""The gateway's app factory: authentication middleware, `/v1/me`, readiness of every service, the proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from gateway.authenticator import Authenticator
from gateway.credentials import extract_credentials
from gateway.jwt_verifier import JwtVerifier, load_jwks
from gateway.proxy import forward, no_route
from gateway.routing import admin_only, service_for
from gateway.settings import GatewaySettings
from shared.errors import Forbidden
from shared.metrics import ROUTE_LABEL_KEY
from shared.principal import PRINCIPAL_KEY, require_principal
from shared.responses import json_model
from shared.upstreams import Upstream
from shared.web import OPEN_PATHS, add_readiness_check, create_service_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_KEY = web.AppKey("upstream_session", ClientSession)
AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)
UPSTREAMS_KEY = web.AppKey("upstreams", dict[str, Upstream])
GATEWAY_SETTINGS_KEY = web.AppKey("gateway_settings", GatewaySettings)


@web.middleware
async def authentication_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request but the probes carries valid credentials; `/admin/` needs the admin role."""
    if request.path in OPEN_PATHS:
        return await handler(request)
    credentials = extract_credentials(request.headers)
    principal = await request.app[AUTHENTICATOR_KEY].authenticate(credentials)
    if admin_only(request.rel_url.raw_path) and not principal.is_admin:
        raise Forbidden("admin role required")
    request[PRINCIPAL_KEY] = principal
    return await handler(request)


async def me(request: web.Request) -> web.Response:
    """`GET /v1/me`: the caller's principal."""
    return json_model(require_principal(request))


# The gateway's own routes, so another method on them is a 405 rather than a 404 from the proxy.
OWN_ROUTES = {"/v1/me": ["GET"]}


async def proxy(request: web.Request) -> web.Response:
    """Any other path: forward to the service that owns it, or 404."""
    if (allowed := OWN_ROUTES.get(request.path)) is not None:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    service = service_for(request.rel_url.raw_path)
    if service is None:
        raise no_route()
    request[ROUTE_LABEL_KEY] = f"proxy:{service}"
    settings = request.app[GATEWAY_SETTINGS_KEY]
    return await forward(
        request.app[SESSION_KEY],
        request.app[UPSTREAMS_KEY][service].next(),
        request,
        require_principal(request),
        settings.internal_secret.get_secret_value(),
    )


def create_app(settings: GatewaySettings) -> web.Application:
    """The gateway app."""
    app = create_service_app(settings, internal_auth=False)
    app.middlewares.append(authentication_middleware)
    app[GATEWAY_SETTINGS_KEY] = settings
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
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def _service_ready(session: ClientSession, base_url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with session.get(f"{base_url}/readyz") as response:
            if response.status != 200:
                raise ConnectionError(f"{base_url} not ready")

    return check
