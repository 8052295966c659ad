"""Running the gateway: on uvloop unless `HUB_UVLOOP=0`, and as `HUB_GATEWAY_WORKERS` processes on one port.

With one worker (the default) this process serves, as every service does (`shared.runner`). With more,
it forks that many workers before any event loop exists; each binds its own listening socket with
SO_REUSEPORT, so the kernel spreads new connections over them, and each has its own caches and rate-limit
buckets (see `gateway.ratelimit`). The parent only supervises: SIGTERM or SIGINT reach every worker, which
finish their requests as a single process would; a worker that exits on its own takes the others and the
parent down with it, so the one restart policy of whoever runs the gateway (Kubernetes, `collections-hub
up`) applies to the whole; and a parent killed outright takes its workers along (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

import uvloop
from aiohttp import web

from gateway.front import install_front
from gateway.settings import GatewaySettings
from shared.logs import configure_logging
from shared.runner import listen, run

log = logging.getLogger(__name__)

AppFactory = Callable[[GatewaySettings], web.Application]

PR_SET_PDEATHSIG = 1
# What the parent allows its workers beyond their own shutdown timeout before it kills them.
STOP_GRACE_SECONDS = 5


def serve_gateway(create_app: AppFactory, settings: GatewaySettings) -> None:
    """Serve until SIGTERM or SIGINT: in this process, or in `gateway_workers` forked ones."""
    configure_logging(settings.service_name, settings.log_level)
    if settings.gateway_workers == 1:
        serve_one(create_app, settings, reuse_port=False)
        return
    if sys.platform != "linux":
        raise SystemExit("HUB_GATEWAY_WORKERS > 1 needs Linux (SO_REUSEPORT balancing, PR_SET_PDEATHSIG)")
    sys.exit(Workers(create_app, settings).run())


def serve_one(create_app: AppFactory, settings: GatewaySettings, *, reuse_port: bool) -> None:
    """Serve the app in this process (also on the metrics port, when set) until a stop signal."""
    ports = [settings.port, *([settings.metrics_port] if settings.metrics_port else [])]
    sockets = [listen(settings.host, port, reuse_port=reuse_port) for port in ports]
    run(
        create_app(settings),
        settings,
        sockets,
        loop=uvloop.new_event_loop() if settings.uvloop else asyncio.new_event_loop(),
        on_setup=install_front,
        connections_per_address=connection_cap_share(settings),
    )


def connection_cap_share(settings: GatewaySettings) -> int:
    """This process's share of the per-address connection cap (0: none): with `gateway_workers`
    processes, each takes 1/N of it (at least 1), so an address never holds more than the cap in all."""
    cap = settings.max_connections_per_address
    return max(1, cap // settings.gateway_workers) if cap else 0


class Workers:
    """The parent of `gateway_workers` serving processes."""

    def __init__(self, create_app: AppFactory, settings: GatewaySettings) -> None:
        self._create_app = create_app
        self._settings = settings
        self._alive: set[int] = set()
        self._stopping = False

    def run(self) -> int:
        """Start the workers, wait for all of them; the exit code (0 after a requested stop)."""
        # Installed before the first fork, so no signal finds a half-started set of workers unhandled.
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGALRM, self._kill)
        for _ in range(self._settings.gateway_workers):
            self._alive.add(self._fork())
        log.info("gateway serving with %d workers", len(self._alive))
        code = 0
        while self._alive:
            pid, status = os.wait()
            self._alive.discard(pid)
            if not self._stopping:
                exit_code = os.waitstatus_to_exitcode(status)  # -N: killed by signal N
                log.error("gateway worker %d exited (code %d); stopping the others", pid, exit_code)
                code = 1
                self._stop(signal.SIGTERM, None)
        return code

    def _fork(self) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() == parent:  # else the parent died before prctl: nobody to serve for
                serve_one(self._create_app, self._settings, reuse_port=True)
            code = 0
        except BaseException:
            log.exception("gateway worker failed")
        finally:
            os._exit(code)  # never return into the parent's code

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        """Ask every worker to finish (they stop accepting, let requests finish, run cleanups)."""
        self._stopping = True
        for pid in self._alive:
            with_signal(pid, signal.SIGTERM)
        signal.alarm(int(self._settings.shutdown_timeout) + STOP_GRACE_SECONDS)

    def _kill(self, _signum: int, _frame: FrameType | None) -> None:
        """Workers still running long after SIGTERM are killed."""
        for pid in self._alive:
            with_signal(pid, signal.SIGKILL)


def with_signal(pid: int, signum: int) -> None:
    """Send a signal to a worker that may just have exited."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
