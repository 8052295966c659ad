"""What the gateway's server calls for each request: proxied paths skip aiohttp's application dispatch.

aiohttp hands every request to its application, which walks the router's index over the path's prefixes,
matches the catch-all's pattern, builds and freezes a match info and runs the middleware chain around the
handler: about 10 µs a request in process, besides the ~2 µs of the gateway's own middleware and proxy it
leads to (bench/README.md, section 2). The front sends a request straight to that middleware and the proxy
when the application would have sent it there anyway: its path (as the router matches it) is none of the
gateway's own routes (the probes, `/metrics`, `/v1/me`, the API description and its page) and matches the
catch-all's pattern, it does not expect `100-continue` (the application's route answers that), the
gateway's middleware is the only one installed (tracing adds its own: then every request goes through the
application) and no response-prepare signal is connected (sent only for requests the router matched).
Everything else goes through the application as before, so each request is answered exactly as it would
be there, but for one case: an `Expect` other than `100-continue` on a path no route matches (`*`), which
the application leaves to aiohttp's plain-text 417 under its banner; the front hands it to the middleware,
whose gate refuses such a path (400) or answers the 417 in the dialect's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import DynamicResource, PlainResource, StaticResource

from gateway.middleware import UNMATCHED, GatewayMiddleware, refuse_expectation, unmet_expectation
from shared.metrics import ROUTE_LABEL_KEY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# The pattern of `gateway.app`'s catch-all route, as the router writes it (and the metrics label it).
CATCH_ALL = "/{tail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayFront:
    """The server's request handler: the direct way for proxied paths, the application for the rest."""

    routed: ServerHandler  # the application's dispatch
    middleware: GatewayMiddleware
    proxy: Handler  # the catch-all route's handler
    catch_all: re.Pattern[str]  # the catch-all's regular expression, as the router matches it
    own_paths: frozenset[str]  # every other route's path, as the router matches it
    own_prefixes: tuple[str, ...]  # static routes: every path below them

    @classmethod
    def for_app(cls, app: web.Application, routed: ServerHandler) -> GatewayFront | None:
        """The front for the gateway `app` (frozen: started), whose application dispatch is `routed`; None
        when the direct way could answer differently (another middleware, a route of unknown shape)."""
        middlewares = list(app.middlewares)
        if len(middlewares) != 1 or not isinstance(middlewares[0], GatewayMiddleware):
            return None
        if app.on_response_prepare:  # sent only for requests the router matched
            return None
        own_paths: set[str] = set()
        own_prefixes: list[str] = []
        catch_all: tuple[Handler, re.Pattern[str]] | None = None
        for resource in app.router.resources():
            if isinstance(resource, PlainResource):
                own_paths.add(resource.canonical)
            elif isinstance(resource, StaticResource):  # its prefix itself and every path below it
                own_paths.add(resource.canonical)
                own_prefixes.append(resource.canonical.rstrip("/") + "/")
            elif isinstance(resource, DynamicResource) and resource.canonical == CATCH_ALL and not catch_all:
                routes = list(resource)
                if len(routes) != 1 or routes[0].method != hdrs.METH_ANY:
                    return None
                catch_all = (routes[0].handler, resource.get_info()["pattern"])
            else:
                return None
        if catch_all is None:
            return None
        proxy, pattern = catch_all
        return cls(
            routed=routed,
            middleware=middlewares[0],
            proxy=proxy,
            catch_all=pattern,
            own_paths=frozenset(own_paths),
            own_prefixes=tuple(own_prefixes),
        )

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request (the server's request factory made it a `web.Request`)."""
        path = request.rel_url.path_safe  # what the router matches routes against
        if (
            path in self.own_paths
            or path.startswith(self.own_prefixes)
            or hdrs.EXPECT in request.headers
            or self.catch_all.fullmatch(path) is None  # no route at all (`*`, a decoded line break)
        ):
            if hdrs.EXPECT in request.headers and self._unrouted(path) and unmet_expectation(request):
                # Every route's `Expect` handler is the middleware's (`gateway.app`), but a path no route
                # matches gets aiohttp's, which answers in plain text under its banner, quoting the value.
                unrouted = cast(web.Request, request)
                unrouted[ROUTE_LABEL_KEY] = UNMATCHED  # the label the application gives such a request
                return await self.middleware(unrouted, refuse_expectation)
            return await self.routed(request)
        routed_request = cast(web.Request, request)
        # The label the catch-all's pattern gave (the proxy names its service over it).
        routed_request[ROUTE_LABEL_KEY] = CATCH_ALL
        return await self.middleware(routed_request, self.proxy)

    def _unrouted(self, path: str) -> bool:
        """Whether no route of the application matches this path."""
        return not (
            path in self.own_paths
            or path.startswith(self.own_prefixes)
            or self.catch_all.fullmatch(path) is not None
        )


def install_front(runner: web.AppRunner) -> bool:
    """Make the set-up `runner`'s server call the gateway's front; whether it does (see `for_app`)."""
    server = runner.server
    if server is None:
        raise RuntimeError("the runner is not set up")
    front = GatewayFront.for_app(runner.app, server.request_handler)
    if front is None:
        return False
    server.request_handler = front
    return True
