"""catalog_service's app factory and resources."""

from __future__ import annotations

from aiohttp import web

from catalog_service.settings import CatalogSettings
from shared.web import create_service_app, mongo_resource, nats_resource


def create_app(settings: CatalogSettings) -> web.Application:
    """The catalog_service app over Mongo and NATS (collection routes arrive with the catalog issue)."""
    app = create_service_app(settings)
    app.cleanup_ctx.extend([mongo_resource, nats_resource])
    return app
