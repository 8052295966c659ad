"""catalog_service's app factory and resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from catalog_service.api import dialect_a, dialect_b, dialect_c, internal, registry
from catalog_service.api.keys import CATALOG_KEY
from catalog_service.consumers import consume_visibility
from catalog_service.repository import CatalogRepository
from catalog_service.service import CatalogService, ListCursors
from catalog_service.settings import CatalogSettings
from shared.authz import AccessDecisions
from shared.metrics import METRICS_KEY
from shared.mongo import create_mongo_client
from shared.web import (
    DB_KEY,
    JS_KEY,
    create_service_app,
    internal_http_resource,
    mongo_resource,
    nats_resource,
    outbox_relay_resource,
    peer,
)

OUTBOX_COLLECTIONS = ["namespaces", "projects", "datasets", "assets", "models", "collections"]


def create_app(settings: CatalogSettings) -> web.Application:
    """The catalog_service app: three dialects and the registry over Mongo, NATS and the outbox relay."""
    app = create_service_app(settings)

    async def catalog_resource(app: web.Application) -> AsyncIterator[None]:
        repository = CatalogRepository(app[DB_KEY])
        await repository.ensure_indexes()
        access = AccessDecisions(peer(app, settings.access_url), ttl=settings.decision_cache_ttl_seconds)
        service = CatalogService(repository, access, ListCursors(settings.internal_secret.get_secret_value()))
        await service.ensure_personal_namespace()
        app[CATALOG_KEY] = service
        yield

    async def visibility_resource(app: web.Application) -> AsyncIterator[None]:
        # Its own client, so its commands are not counted as the request path's.
        client = create_mongo_client(settings, app[METRICS_KEY], label="consumer")
        task = asyncio.create_task(
            consume_visibility(
                app[JS_KEY], CatalogRepository(client[settings.mongo_database]), settings.visibility_durable
            ),
            name="catalog-visibility",
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()

    app.cleanup_ctx.extend(
        [
            mongo_resource,
            nats_resource,
            internal_http_resource,
            catalog_resource,
            outbox_relay_resource(OUTBOX_COLLECTIONS),
            visibility_resource,
        ]
    )
    for module in (registry, dialect_a, dialect_b, dialect_c, internal):
        app.add_routes(module.routes)
    return app
