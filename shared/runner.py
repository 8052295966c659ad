"""Running a service as a process: JSON logs, then serve until SIGTERM and shut down gracefully."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from shared.logs import configure_logging
from shared.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def serve(create_app: Callable[[SettingsT], web.Application], settings: SettingsT) -> None:
    """Serve the app; on SIGTERM or SIGINT stop accepting, let in-flight requests finish, run cleanups."""
    configure_logging(settings.service_name, settings.log_level)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
        handle_signals=True,
    )
