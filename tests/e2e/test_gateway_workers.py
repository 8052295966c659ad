"""The gateway with `HUB_GATEWAY_WORKERS=2` in front of the session stack: two processes serve one port,
and they never outlive their parent."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

from collections_hub.processes import ManagedProcess, free_port, http_ok
from collections_hub.stack import EmbeddedStack


@contextmanager
def gateway_with_workers(stack: EmbeddedStack, log_dir: Path) -> Iterator[tuple[ManagedProcess, str]]:
    """`python -m gateway` with two workers, as the stack starts its own; stopped (or killed) after."""
    port = free_port()
    proc = ManagedProcess(
        "gateway-workers",
        [sys.executable, "-m", "gateway"],
        log_dir / "gateway-workers.log",
        env={**stack.service_env("gateway", port), "HUB_GATEWAY_WORKERS": "2"},
    )
    url = f"http://127.0.0.1:{port}"
    proc.start().wait_until(lambda: http_ok(f"{url}/readyz"), timeout=60)
    try:
        yield proc, url
    finally:
        proc.stop()
        proc.kill()


def children_of(pid: int) -> list[int]:
    """The process's children, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def running(pid: int) -> bool:
    """Whether the pid is a process that has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until_gone(pids: list[int], seconds: float = 15.0) -> list[int]:
    """Wait for the processes to exit; those still running at the deadline."""
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


async def test_two_workers_serve_requests_on_one_port(stack: EmbeddedStack, tmp_path: Path) -> None:
    """Both workers run under the parent, and requests on 40 fresh connections all succeed."""
    with gateway_with_workers(stack, tmp_path) as (proc, url):
        workers = children_of(proc.pid)
        assert len(workers) == 2
        assert all(running(pid) for pid in workers)
        headers = {"X-API-KEY": stack.admin_api_key}
        # A connection each, so the kernel's SO_REUSEPORT spread reaches both listening sockets.
        async with ClientSession(connector=TCPConnector(force_close=True)) as http:
            for _ in range(40):
                async with http.get(f"{url}/v1/me", headers=headers) as response:
                    assert response.status == 200
                    assert (await response.json())["role"] == "admin"
        assert all(running(pid) for pid in workers)


def test_killing_the_parent_stops_its_workers(stack: EmbeddedStack, tmp_path: Path) -> None:
    """kill -9 of the parent: both workers exit on their own within seconds, and the port is free."""
    with gateway_with_workers(stack, tmp_path) as (proc, url):
        workers = children_of(proc.pid)
        assert len(workers) == 2
        proc.kill()
        assert wait_until_gone(workers) == []
        assert not http_ok(f"{url}/healthz")


def test_sigterm_stops_every_worker_cleanly(stack: EmbeddedStack, tmp_path: Path) -> None:
    """SIGTERM to the parent: the workers shut down gracefully and the parent exits 0."""
    with gateway_with_workers(stack, tmp_path) as (proc, _url):
        workers = children_of(proc.pid)
        assert proc.stop() == 0
        assert wait_until_gone(workers) == []


def test_a_worker_that_dies_takes_the_gateway_down(stack: EmbeddedStack, tmp_path: Path) -> None:
    """One worker killed: the parent stops the other and exits non-zero, for its supervisor to restart."""
    with gateway_with_workers(stack, tmp_path) as (proc, _url):
        first, second = children_of(proc.pid)
        os.kill(first, signal.SIGKILL)
        assert proc.process is not None
        code = proc.process.wait(30)
        assert code == 1
        assert wait_until_gone([second]) == []
