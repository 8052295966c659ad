"""access_service's app factory and resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from access_service.api import admin, groups, internal, project_roles, v2
from access_service.api.keys import (
    ACCESS_KEY,
    COLLECTIONS_KEY,
    DECISIONS_KEY,
    GROUPS_KEY,
    MAILER_KEY,
    PROJECTS_KEY,
    ROLES_KEY,
    SHARING_KEY,
)
from access_service.decisions import Decisions
from access_service.groups import GroupService
from access_service.list_facts import send_all_facts
from access_service.mail import RecordingMailer
from access_service.repository import AccessRepository
from access_service.roles import ProjectRoles
from access_service.service import AccessService
from access_service.settings import AccessSettings
from access_service.sharing import CollectionSharing
from shared.catalog_directory import CatalogDirectory
from shared.web import (
    DB_KEY,
    create_service_app,
    internal_http_resource,
    mongo_resource,
    nats_resource,
    outbox_relay_resource,
    peer,
)

# Every collection whose documents carry pending events; the relay publishes them.
OUTBOX_COLLECTIONS = ["users", "api_keys", "groups", "collection_access"]


def create_app(settings: AccessSettings) -> web.Application:
    """The access_service app: admin, dialect B and internal routes over Mongo, NATS and the outbox relay.

    Ports not registered before start get their default adapters: catalog_service over internal HTTP for
    projects and collections, and the recording mailer.
    """
    app = create_service_app(settings)

    async def access_resource(app: web.Application) -> AsyncIterator[None]:
        repository = AccessRepository(app[DB_KEY])
        await repository.ensure_indexes()
        service = AccessService(repository)
        if settings.admin_api_key is not None and settings.admin_api_key.get_secret_value():
            await service.bootstrap_admin(settings.admin_api_key.get_secret_value())
        catalog = CatalogDirectory(peer(app, settings.catalog_url))
        if PROJECTS_KEY not in app:
            app[PROJECTS_KEY] = catalog
        if COLLECTIONS_KEY not in app:
            app[COLLECTIONS_KEY] = catalog
        if MAILER_KEY not in app:
            app[MAILER_KEY] = RecordingMailer(repository)
        decisions = Decisions(repository)
        app[ACCESS_KEY] = service
        app[DECISIONS_KEY] = decisions
        app[GROUPS_KEY] = GroupService(repository, app[COLLECTIONS_KEY])
        app[ROLES_KEY] = ProjectRoles(repository, app[PROJECTS_KEY], app[COLLECTIONS_KEY])
        app[SHARING_KEY] = CollectionSharing(repository, decisions, app[COLLECTIONS_KEY], app[MAILER_KEY])
        # Shares, groups and roles written before catalog's lists had a read model reach it once.
        catch_up = asyncio.create_task(send_all_facts(repository, peer(app, settings.catalog_url)))
        yield
        catch_up.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await catch_up

    app.cleanup_ctx.extend(
        [
            mongo_resource,
            nats_resource,
            internal_http_resource,
            access_resource,
            outbox_relay_resource(OUTBOX_COLLECTIONS),
        ]
    )
    for module in (admin, groups, project_roles, internal, v2):
        app.add_routes(module.routes)
    return app
