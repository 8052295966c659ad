"""Running a service as a process: JSON logs, then serve until SIGTERM and shut down gracefully."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from shared.logs import configure_logging
from shared.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def serve(
    create_app: Callable[[SettingsT], web.Application],
    settings: SettingsT,
    *,
    extra_ports: list[int] | None = None,
) -> None:
    """Serve the app (also on `extra_ports`, same host); on SIGTERM or SIGINT stop accepting, let in-flight
    requests finish, run cleanups."""
    configure_logging(settings.service_name, settings.log_level)
    sockets = [listen(settings.host, port) for port in [settings.port, *(extra_ports or [])]]
    run(create_app(settings), settings, sockets)


def run(
    app: web.Application,
    settings: ServiceSettings,
    sockets: list[socket.socket],
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Serve the app on listening sockets until a stop signal (on `loop`, when given)."""
    web.run_app(
        app,
        sock=sockets,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
        handle_signals=True,
        loop=loop,
    )


def listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket, as `run_app` would open for a host and port; with `reuse_port`, one of
    several on the port (each process then gets a share of the connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock
