"""`/openapi.json`, `/openapi/{a,b,c,admin}.json` and `/docs`, served by the gateway without credentials.

The documents are built once, when the app is made, and served as the same bytes with a strong ETag
(304 on a matching If-None-Match). `/docs` is Swagger UI from the `swagger-ui-bundle-v2` package, its
static files served from the installed package: the page loads nothing from anywhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from gateway.openapi.build import build_all
from gateway.openapi.catalogue import DOCUMENTS

DOCS_PATH = "/docs"
STATIC_PREFIX = "/docs/static"
# Clients revalidate every time (the ETag makes that a 304); a new release is seen at once.
CACHE_CONTROL = "no-cache"
# Swagger UI styles itself inline; everything else, scripts included, comes from this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class Served:
    """One response body, built once, with its strong ETag."""

    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Served:
        """The body with an ETag that is its SHA-256."""
        return cls(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')

    def respond(self, request: web.Request) -> web.Response:
        """200 with the body, or 304 when the client already holds this version."""
        headers = {"ETag": self.etag, "Cache-Control": CACHE_CONTROL}
        if self.etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, content_type=self.content_type, headers=headers)


def public_docs_path(path: str) -> bool:
    """Whether a (canonical) path is one of the description's or the page's: open to anyone."""
    return path in {"/openapi.json", DOCS_PATH} or path.startswith(("/openapi/", f"{DOCS_PATH}/"))


_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>collections-hub API</title>
    <link rel="stylesheet" type="text/css" href="/docs/static/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/static/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/static/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/init.js" charset="UTF-8"></script>
  </body>
</html>
"""

# One entry per document in the top bar's selector; `?urls.primaryName=<name>` opens one directly.
_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    urls: %s,
    "urls.primaryName": %s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    validatorUrl: null,
    displayRequestDuration: true,
    tryItOutEnabled: false
  });
};
"""


def _initializer() -> bytes:
    urls = [{"url": f"/openapi/{d.name}.json", "name": d.tag} for d in DOCUMENTS]
    urls.append({"url": "/openapi.json", "name": "all dialects"})
    return (_INIT % (json.dumps(urls), json.dumps(DOCUMENTS[0].tag))).encode()


def add_docs_routes(app: web.Application, own: Iterable[web.RouteDef]) -> None:
    """Mount the documents (built now from the route tables and `own`, the gateway's routes) and `/docs`."""
    served = {
        name: Served.of(json.dumps(document, separators=(",", ":")).encode(), "application/json")
        for name, document in build_all(own).items()
    }
    page = Served.of(_PAGE.encode(), "text/html")
    initializer = Served.of(_initializer(), "text/javascript")

    def serve(item: Served, *, html: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = item.respond(request)
            if html:
                response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            return response

        return handler

    app.router.add_get("/openapi.json", serve(served["all"]))
    for spec in DOCUMENTS:
        app.router.add_get(f"/openapi/{spec.name}.json", serve(served[spec.name]))
    app.router.add_get(DOCS_PATH, serve(page, html=True))
    app.router.add_get(f"{DOCS_PATH}/init.js", serve(initializer))
    app.router.add_static(STATIC_PREFIX, swagger_ui_path)
