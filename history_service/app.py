"""history_service's app factory and resources."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from history_service.api import internal, namespaced, v1, v2
from history_service.api.keys import CONSUMER_KEY, HISTORY_KEY
from history_service.consumer import HistoryConsumer, HistoryMetrics
from history_service.cursors import HistoryCursors
from history_service.repository import HistoryRepository
from history_service.service import HistoryService
from history_service.settings import HistorySettings
from shared.authz import AccessDecisions
from shared.catalog_directory import CatalogDirectory
from shared.metrics import METRICS_KEY
from shared.mongo import create_mongo_client, ping
from shared.web import (
    DB_KEY,
    JS_KEY,
    NATS_KEY,
    add_readiness_check,
    create_service_app,
    internal_http_resource,
    mongo_resource,
    nats_resource,
    peer,
)


def create_app(settings: HistorySettings) -> web.Application:
    """The history_service app: the three dialects' history routes over the projection its consumer feeds."""
    app = create_service_app(settings)
    metrics = HistoryMetrics.register(app[METRICS_KEY].registry)

    async def history_resource(app: web.Application) -> AsyncIterator[None]:
        repository = HistoryRepository(app[DB_KEY])
        await repository.ensure_indexes()
        app[HISTORY_KEY] = HistoryService(
            repository,
            CatalogDirectory(peer(app, settings.catalog_url)),
            AccessDecisions(peer(app, settings.access_url), ttl=settings.decision_cache_ttl_seconds),
            HistoryCursors(settings.internal_secret.get_secret_value()),
        )
        yield

    async def consumer_resource(app: web.Application) -> AsyncIterator[None]:
        # A client of its own: the consumer's writes are counted apart (client="consumer") from requests'.
        client = create_mongo_client(settings, app[METRICS_KEY], label="consumer")
        await ping(client)
        reader = app[HISTORY_KEY]
        recorder = HistoryService(
            HistoryRepository(client[settings.mongo_database]), reader.directory, reader.decisions
        )
        consumer = HistoryConsumer(app[NATS_KEY], app[JS_KEY], recorder, settings, metrics)
        await consumer.start()
        app[CONSUMER_KEY] = consumer

        async def consuming() -> None:
            if not consumer.running():
                raise RuntimeError("history consumer stopped")

        add_readiness_check(app, "consumer", consuming)
        yield
        await consumer.stop()
        await client.close()

    app.cleanup_ctx.extend(
        [mongo_resource, nats_resource, internal_http_resource, history_resource, consumer_resource]
    )
    for module in (v2, namespaced, v1, internal):
        app.add_routes(module.routes)
    return app
