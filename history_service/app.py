"""history_service's app factory and resources."""

from __future__ import annotations

from aiohttp import web

from history_service.settings import HistorySettings
from shared.web import create_service_app, mongo_resource, nats_resource


def create_app(settings: HistorySettings) -> web.Application:
    """The history_service app over Mongo and NATS (its consumer and routes come with the history issue)."""
    app = create_service_app(settings)
    app.cleanup_ctx.extend([mongo_resource, nats_resource])
    return app
