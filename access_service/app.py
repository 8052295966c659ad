"""access_service's app factory and resources."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from access_service.api import admin, internal
from access_service.api.keys import ACCESS_KEY
from access_service.repository import AccessRepository
from access_service.service import AccessService
from access_service.settings import AccessSettings
from shared.web import DB_KEY, create_service_app, mongo_resource, nats_resource, outbox_relay_resource

OUTBOX_COLLECTIONS = ["users", "api_keys"]


def create_app(settings: AccessSettings) -> web.Application:
    """The access_service app: admin and internal routes over Mongo, NATS and the outbox relay."""
    app = create_service_app(settings)

    async def access_resource(app: web.Application) -> AsyncIterator[None]:
        repository = AccessRepository(app[DB_KEY])
        await repository.ensure_indexes()
        service = AccessService(repository)
        if settings.admin_api_key is not None and settings.admin_api_key.get_secret_value():
            await service.bootstrap_admin(settings.admin_api_key.get_secret_value())
        app[ACCESS_KEY] = service
        yield

    app.cleanup_ctx.extend(
        [mongo_resource, nats_resource, access_resource, outbox_relay_resource(OUTBOX_COLLECTIONS)]
    )
    app.add_routes(admin.routes)
    app.add_routes(internal.routes)
    return app
