"""Running a service as a process: JSON logs, then serve until SIGTERM and shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from shared.connections import AddressCounts, BodyDeadline, CappedSite
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
    *,
    on_setup: Callable[[web.AppRunner], object] | None = None,
    connections_per_address: int = 0,
) -> None:
    """Serve the app on listening sockets until a stop signal (on `loop`, when given), as `web.run_app`
    does; `on_setup` sees the runner once the app has started and before any socket accepts. See
    `start_sites` for the body deadline and `connections_per_address`."""
    loop = loop or asyncio.new_event_loop()
    runner = service_runner(app, settings)

    async def serve() -> None:
        await runner.setup()
        try:
            if on_setup is not None:
                on_setup(runner)
            await start_sites(runner, settings, sockets, connections_per_address=connections_per_address)
            await asyncio.Event().wait()  # until a stop signal raises GracefulExit here
        finally:
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def service_runner(app: web.Application, settings: ServiceSettings) -> web.AppRunner:
    """The runner `run` serves the app with: stop signals handled, no access log, idle kept-alive
    connections closed after `keepalive_seconds`, in-flight requests given `shutdown_timeout`."""
    return web.AppRunner(
        app,
        handle_signals=True,
        shutdown_timeout=settings.shutdown_timeout,
        **connection_options(settings),
    )


def connection_options(settings: ServiceSettings) -> dict[str, Any]:
    """What each connection's handler (aiohttp's `RequestHandler`) is built with."""
    return {"access_log": None, "keepalive_timeout": settings.keepalive_seconds}


async def start_sites(
    runner: web.AppRunner,
    settings: ServiceSettings,
    sockets: list[socket.socket],
    *,
    connections_per_address: int = 0,
) -> None:
    """Accept connections on the sockets of the set-up `runner`: each request's body gets
    `body_timeout_seconds` (`shared.connections.BodyDeadline`, around whatever handler `on_setup` left);
    with `connections_per_address` > 0, a connection from an address that has that many open is closed
    at once (`CappedConnection`; one count for all the sockets)."""
    server = runner.server
    if server is None:
        raise RuntimeError("the runner is not set up")
    server.request_handler = BodyDeadline(server.request_handler, settings.body_timeout_seconds)
    if connections_per_address <= 0:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        return
    counts = AddressCounts(connections_per_address)
    for sock in sockets:
        await CappedSite(runner, sock, counts, **connection_options(settings)).start()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still running at shutdown, wait for them, and report those that failed (as
    `web.run_app` does)."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during shutdown", "exception": exc, "task": task}
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
