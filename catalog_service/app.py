"""catalog_service's app factory and resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from nats.js.api import DeliverPolicy

from catalog_service.api import dialect_a, dialect_b, dialect_c, internal, registry
from catalog_service.api.keys import CATALOG_KEY, VERIFIER_KEY
from catalog_service.consumers import consume_facts, consume_visibility
from catalog_service.member_repository import MemberRepository
from catalog_service.membership import Membership
from catalog_service.reader_views import ReaderViews
from catalog_service.repository import CatalogRepository
from catalog_service.service import CatalogService, ItemCursors, ListCursors
from catalog_service.settings import CatalogSettings
from catalog_service.view_repository import ViewRepository
from catalog_service.view_verifier import ViewVerifier
from shared.authz import AccessDecisions
from shared.metrics import METRICS_KEY
from shared.mongo import create_mongo_client
from shared.tasks import raise_if_cancelling
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

log = logging.getLogger(__name__)

OUTBOX_COLLECTIONS = ["namespaces", "projects", "datasets", "assets", "models", "collections"]


async def repeat_forever(passes: tuple[Callable[[], Awaitable[object]], ...], interval: float) -> None:
    """Run the passes one after another, again every `interval` seconds (a failed pass is retried the next
    time: recovery must outlive a database outage)."""
    while True:
        raise_if_cancelling()
        for run_pass in passes:
            try:
                await run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried next round
                log.warning("recovery failed, will retry: %s", exc)
        await asyncio.sleep(interval)


def create_app(settings: CatalogSettings) -> web.Application:
    """The catalog_service app: three dialects and the registry over Mongo, NATS and the outbox relay."""
    app = create_service_app(settings)

    async def catalog_resource(app: web.Application) -> AsyncIterator[None]:
        repository = CatalogRepository(app[DB_KEY])
        members = MemberRepository(app[DB_KEY])
        views = ViewRepository(app[DB_KEY])
        await repository.ensure_indexes()
        await members.ensure_indexes()
        await views.ensure_indexes()
        access = AccessDecisions(peer(app, settings.access_url), ttl=settings.decision_cache_ttl_seconds)
        service = CatalogService(
            repository,
            members,
            views,
            access,
            ListCursors(settings.internal_secret.get_secret_value()),
            stale_after_seconds=settings.member_change_stale_seconds,
            item_cursors=ItemCursors(settings.internal_secret.get_secret_value()),
        )
        await service.projects.ensure_personal_namespace()
        # Collections written by the layout before member documents move over before the first request.
        await service.membership.migrate_legacy_layout()
        # Collections written before the lists' views existed join them (owners and everyone's lists).
        await service.views.migrate()
        app[CATALOG_KEY] = service
        app[VERIFIER_KEY] = ViewVerifier(
            service.views,
            repository,
            views,
            app[METRICS_KEY],
            confirm_seconds=settings.views_verify_confirm_seconds,
        )
        yield

    async def recovery_resource(app: web.Application) -> AsyncIterator[None]:
        # Finishes membership changes a crash interrupted, on a client of its own (counted apart).
        client = create_mongo_client(settings, app[METRICS_KEY], label="recovery")
        db = client[settings.mongo_database]
        catalog = app[CATALOG_KEY]
        membership = Membership(
            MemberRepository(db),
            catalog.lookup,
            catalog.items,
            stale_after_seconds=settings.member_change_stale_seconds,
        )
        view_repository, repository = ViewRepository(db), CatalogRepository(db)
        views = ReaderViews(view_repository, repository)
        verifier = ViewVerifier(
            views,
            repository,
            view_repository,
            app[METRICS_KEY],
            confirm_seconds=settings.views_verify_confirm_seconds,
        )
        interval = settings.member_recovery_interval_seconds
        recoveries = (membership.recover_stale, membership.recover_thumbnails, views.recover)
        tasks = [asyncio.create_task(repeat_forever(recoveries, interval), name="recovery")]
        if per_pass := settings.views_verify_per_pass:
            # A task of its own: checking everyone's view of a large hub takes a while, and must not hold
            # back finishing the changes a crash interrupted.
            verify = (lambda: verifier.run_pass(per_pass),)
            tasks.append(asyncio.create_task(repeat_forever(verify, interval), name="views-verifier"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.close()

    async def visibility_resource(app: web.Application) -> AsyncIterator[None]:
        # Its own client, so its commands are not counted as the request path's.
        client = create_mongo_client(settings, app[METRICS_KEY], label="consumer")
        db = client[settings.mongo_database]
        start = DeliverPolicy.ALL if settings.consumer_deliver_policy == "all" else DeliverPolicy.NEW
        tasks = [
            asyncio.create_task(
                consume_visibility(app[JS_KEY], CatalogRepository(db), settings.visibility_durable, start),
                name="catalog-visibility",
            ),
            asyncio.create_task(
                consume_facts(
                    app[JS_KEY],
                    ReaderViews(ViewRepository(db), CatalogRepository(db)),
                    settings.facts_durable,
                    start,
                ),
                name="catalog-visibility-facts",
            ),
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
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
            recovery_resource,
        ]
    )
    for module in (registry, dialect_a, dialect_b, dialect_c, internal):
        app.add_routes(module.routes)
    return app
