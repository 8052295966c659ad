"""`collections-hub up` heals: kill -9 any child and it comes back with nothing acknowledged lost.

Each test runs the real console script as a subprocess on its own data directory and port. `up` writes
`<data_dir>/stack.json` (each child's pid and URL, rewritten on every restart): that is how a test, like
an operator, finds the process to kill. Writes are dialect C creates (catalog_service) followed by a
dialect B "make public" (access_service); both must show in the collection's history exactly once.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout

from collections_hub.processes import ManagedProcess, free_port
from collections_hub.stack import persistent_secrets
from collections_hub.supervisor import RestartPolicy, Supervisor
from shared.principal import internal_headers
from tests.support import UNLIMITED_RATES

ADMIN_KEY = f"supervisor-admin-{uuid.uuid4().hex}"
# The gateway's `/readyz` names each upstream `<service>-<replica>`.
READINESS_NAME = {
    "access_service": "access-0",
    "catalog_service": "catalog-0",
    "history_service": "history-0",
}
# history_service gets a killed replica's unacknowledged events again after 3 s (production: 10 s).
FAST_REDELIVERY = {"HUB_CONSUMER_BACKOFF_SECONDS": "[3]"}


def alive(pid: int) -> bool:
    """Whether the pid is a running process (a zombie awaiting its parent's wait does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Up:
    """A running `collections-hub up`: its process, data directory, gateway port and output file."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    output_path: Path
    pids_seen: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        """The gateway."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything `up` printed (stdout and stderr)."""
        return self.output_path.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """Child name -> current pid, from `stack.json`; every pid read is remembered."""
        try:
            state: dict[str, Any] = json.loads((self.data_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return {}
        pids = {name: int(child["pid"]) for name, child in state["children"].items()}
        self.pids_seen.update(pids.values())
        return pids

    def wait_for(self, condition: str, check: Callable[[], bool], within: float = 60.0) -> None:
        """Poll `check()` until it is true; fail if `up` exits or the deadline passes."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check():
                return
            assert self.process.poll() is None, f"up exited while waiting for {condition}:\n{self.output()}"
            time.sleep(0.05)
        raise AssertionError(f"no {condition} after {within}s:\n{self.output()}")

    def restarted(self, name: str, old_pid: int, *, ready: bool) -> None:
        """Wait until `stack.json` shows a new pid for the child (and, if `ready`, the gateway is ready)."""

        def done() -> bool:
            return self.children().get(name, old_pid) != old_pid and (not ready or readyz(self.url)[0] == 200)

        self.wait_for(f"{name} restarted" + (" and the stack ready" if ready else ""), done)

    def terminate(self, within: float = 60.0) -> int:
        """SIGTERM `up` and wait for its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=within)

    def kill_everything(self) -> None:
        """Last resort after a failed test: no process outlives it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.pids_seen | set(self.children().values()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def start_up(data_dir: Path, **env: str) -> Up:
    """Run `collections-hub up` on its own servers (no MONGODB_URL/NATS_URL) and wait until it is ready."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "NATS_URL")}
    data_dir.mkdir(parents=True, exist_ok=True)
    output_path = data_dir / "up.out"
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "collections-hub"), "up"],
            env={
                **inherited,
                **UNLIMITED_RATES,
                "HUB_DATA_DIR": str(data_dir),
                "HUB_PORT": str(port),
                "HUB_ADMIN_API_KEY": ADMIN_KEY,
                **env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    up = Up(process, data_dir, port, output_path)
    try:
        up.wait_for("ready stack", lambda: len(up.children()) == 6 and readyz(up.url)[0] == 200, 90.0)
    except BaseException:
        up.kill_everything()
        raise
    return up


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    """The gateway's `/readyz` status and body; status 0 when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError:
        return 0, {}


def kill_child(up: Up, name: str) -> int:
    """kill -9 one child by the pid in `stack.json`; return that pid once the process is gone."""
    pid = up.children()[name]
    os.kill(pid, signal.SIGKILL)
    up.wait_for(f"{name} gone", lambda: not alive(pid), 10.0)
    return pid


@dataclass
class Acknowledged:
    """Collections whose create (and, when set, whose make-public) the gateway acknowledged."""

    names: dict[str, str] = field(default_factory=dict)  # collection id -> name
    public: set[str] = field(default_factory=set)


async def write(http: ClientSession, url: str, acknowledged: Acknowledged, count: int) -> int:
    """Create `count` collections and make each public; return how many requests failed."""
    failed = 0
    headers = {"X-API-KEY": ADMIN_KEY}
    for _ in range(count):
        name = f"healing-{uuid.uuid4().hex[:10]}"
        try:
            created = await http.post(f"{url}/v1/collections", json={"name": name}, headers=headers)
            if created.status != 200:
                failed += 1
                continue
            collection_id = (await created.json())["collection"]["id"]
            acknowledged.names[collection_id] = name
            public = await http.post(f"{url}/api/v2/collections/{collection_id}/public", headers=headers)
            if public.status == 200:
                acknowledged.public.add(collection_id)
            else:
                failed += 1
        except (ClientError, TimeoutError):
            failed += 1
    return failed


async def history_types(http: ClientSession, url: str, collection_id: str) -> list[str]:
    """The `event_type` of every history entry of the collection (one page: a few entries each here)."""
    response = await http.get(
        f"{url}/v1/collections/{collection_id}/history?pageSize=100", headers={"X-API-KEY": ADMIN_KEY}
    )
    assert response.status == 200, await response.text()
    return [entry["event_type"] for entry in (await response.json())["data"]]


async def assert_all_kept(http: ClientSession, url: str, acknowledged: Acknowledged) -> None:
    """Every acknowledged collection reads back, and its history holds each acknowledged change once."""
    headers = {"X-API-KEY": ADMIN_KEY}
    for collection_id, name in acknowledged.names.items():
        response = await http.get(f"{url}/v1/collections/{collection_id}", headers=headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["collection"]["name"] == name
        expected = ["COLLECTION_CREATED"]
        if collection_id in acknowledged.public:
            expected.append("COLLECTION_MADE_PUBLIC")
        # history_service records events as its consumer receives them: poll until they are there.
        deadline = time.monotonic() + 30
        while not set(expected) <= set(types := await history_types(http, url, collection_id)):
            assert time.monotonic() < deadline, f"{collection_id}: history {types}, want {expected}"
            await asyncio.sleep(0.2)
        assert sorted(types) == sorted(expected), f"{collection_id}: history {types}"


@pytest.fixture(scope="module")
def healing_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One `up` shared by the kill -9 tests: each kills one child of it."""
    up = start_up(tmp_path_factory.mktemp("healing"), **FAST_REDELIVERY)
    try:
        yield up
    finally:
        up.terminate()
        up.kill_everything()


@pytest.mark.parametrize("victim", ["access_service", "catalog_service", "history_service", "gateway"])
async def test_kill_9_of_a_child_heals_and_keeps_every_acknowledged_write(
    healing_up: Up, victim: str
) -> None:
    """kill -9 of a service or the gateway: /readyz names it (or calls fail), then all heals, nothing lost."""
    await kill_and_heal(healing_up, victim)


@pytest.mark.parametrize("victim", ["nats-server", "nx-27017"])
async def test_kill_9_of_infrastructure_heals_and_keeps_every_acknowledged_write(
    healing_up: Up, victim: str
) -> None:
    """kill -9 of nats-server or nx-27017: restarted on its port and store, the stack heals, nothing lost."""
    await kill_and_heal(healing_up, victim)


async def kill_and_heal(up: Up, victim: str) -> None:
    """Write, kill -9 the victim, write, wait until healed, write; then check every acknowledged write."""
    acknowledged = Acknowledged()
    async with ClientSession(timeout=ClientTimeout(total=10)) as http:
        assert await write(http, up.url, acknowledged, 3) == 0
        old_pid = await asyncio.to_thread(kill_child, up, victim)
        if victim == "gateway":
            with pytest.raises(ClientError):
                await http.get(f"{up.url}/readyz")
        elif victim in READINESS_NAME:
            status, body = await asyncio.to_thread(readyz, up.url)
            assert status == 503
            assert READINESS_NAME[victim] in body["failed"]
        # Writes while it restarts may fail; those acknowledged must be kept like the rest.
        await write(http, up.url, acknowledged, 2)
        await asyncio.to_thread(up.restarted, victim, old_pid, ready=True)
        assert await write(http, up.url, acknowledged, 3) == 0
        await assert_all_kept(http, up.url, acknowledged)
    assert up.process.poll() is None
    output = up.output()
    assert (
        f"collections-hub: {victim} (pid {old_pid}) exited, exit code -9 (SIGKILL); restart attempt 1"
        in output
    )
    assert f"collections-hub: restarted {victim} as pid {up.children()[victim]}" in output


async def test_a_child_that_keeps_failing_stops_the_stack(tmp_path: Path) -> None:
    """A child killed 3 times within the window (limit lowered to 3) makes `up` stop everything, exit 1."""
    up = await asyncio.to_thread(
        start_up, tmp_path, HUB_RESTART_MAX_EXITS="3", HUB_RESTART_BACKOFF_SECONDS="0.2"
    )
    try:
        for exits in (1, 2, 3):
            old_pid = await asyncio.to_thread(kill_child, up, "catalog_service")
            if exits < 3:  # not ready: a crash loop kills a child before it gets that far
                await asyncio.to_thread(up.restarted, "catalog_service", old_pid, ready=False)
        exit_code = await asyncio.to_thread(up.process.wait, 60)
        output = up.output()
        assert exit_code == 1, output
        assert "collections-hub: catalog_service exited 3 times within 60 s" in output
        assert "collections-hub stopped" in output
        assert not [pid for pid in up.pids_seen if alive(pid)]
        assert not (tmp_path / "stack.json").exists()
    finally:
        up.kill_everything()


async def test_sigterm_stops_every_process_even_after_restarts(tmp_path: Path) -> None:
    """SIGTERM to `up` after a restart: exit 0, and neither the first nor the restarted child is left."""
    up = await asyncio.to_thread(start_up, tmp_path)
    try:
        old_pid = await asyncio.to_thread(kill_child, up, "history_service")
        await asyncio.to_thread(up.restarted, "history_service", old_pid, ready=True)
        # The restarted child has the stack's environment: it takes the internal secret from secrets.json.
        secret = json.loads((tmp_path / "secrets.json").read_text())["internal_secret"]
        history_url = json.loads((tmp_path / "stack.json").read_text())["children"]["history_service"]["url"]
        replay = f"{history_url}/internal/history/dead-letters/replay"
        async with ClientSession() as http:
            async with http.post(replay) as refused:
                assert refused.status in (401, 403)
            async with http.post(replay, headers=internal_headers(secret, None, None)) as accepted:
                assert accepted.status == 200, await accepted.text()
        every_pid = set(up.pids_seen)
        assert len(every_pid) == 7  # six children, one of them twice
        exit_code = await asyncio.to_thread(up.terminate)
        assert exit_code == 0, up.output()
        assert "collections-hub stopped" in up.output()
        assert not [pid for pid in every_pid if alive(pid)]
    finally:
        up.kill_everything()


def test_internal_secret_is_kept_and_added_to_an_older_secrets_file(tmp_path: Path) -> None:
    """A secrets.json without `internal_secret` gains one, keeps its other secrets, and it never changes."""
    old = {"admin_api_key": "kept-admin-key", "jwt_secret": "kept-jwt-secret"}
    (tmp_path / "secrets.json").write_text(json.dumps(old))
    first = persistent_secrets(tmp_path)
    assert {key: first[key] for key in old} == old
    assert len(first["internal_secret"]) >= 40
    assert persistent_secrets(tmp_path) == first
    assert json.loads((tmp_path / "secrets.json").read_text()) == first
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


@dataclass
class OneChild:
    """A stack of one real child process, for the supervisor (counts how often it recorded pids)."""

    child: ManagedProcess
    recorded: int = 0

    def children(self) -> list[ManagedProcess]:
        """The one child."""
        return [self.child]

    def record_state(self) -> None:
        """Count the call: the supervisor records pids after every restart."""
        self.recorded += 1


def crasher(tmp_path: Path) -> ManagedProcess:
    """A started child that exits with code 3 at once, every time it is started."""
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    return ManagedProcess("crasher", argv, tmp_path / "crasher.log").start()


def exited_pid(child: ManagedProcess) -> int:
    """The child's pid, once it has exited."""
    assert child.process is not None
    child.process.wait(timeout=30)
    return child.pid


def test_backoff_doubles_to_its_cap_and_a_crash_loop_gives_up(tmp_path: Path) -> None:
    """Restarts wait 0.5, 1, 2, 2 s (cap 2), each exit logged with code and attempt; the 5th exit stops it."""
    policy = RestartPolicy(backoff_seconds=0.5, backoff_cap_seconds=2, max_exits=5, window_seconds=60)
    stack, log, now = OneChild(crasher(tmp_path)), io.StringIO(), [0.0]
    supervisor = Supervisor(stack, policy, log=log, clock=lambda: now[0])
    for attempt, delay in enumerate([0.5, 1.0, 2.0, 2.0], start=1):
        pid = exited_pid(stack.child)
        assert supervisor.supervise_once() is None
        assert (
            f"crasher (pid {pid}) exited, exit code 3; restart attempt {attempt} in {delay:g} s"
            in log.getvalue()
        )
        due = now[0] + delay
        now[0] = due - 0.01
        assert supervisor.supervise_once() is None
        assert stack.child.pid == pid, "restarted before its backoff was over"
        now[0] = due
        assert supervisor.supervise_once() is None
        assert stack.child.pid != pid
        assert f"restarted crasher as pid {stack.child.pid} (attempt {attempt})" in log.getvalue()
    exited_pid(stack.child)
    reason = supervisor.supervise_once()
    assert reason is not None
    assert reason.startswith("collections-hub: crasher exited 5 times within 60 s (last: exit code 3)")
    assert stack.recorded == 4


def test_a_child_that_stayed_up_starts_its_backoff_over(tmp_path: Path) -> None:
    """An exit after `stable_after_seconds` up is attempt 1 again, and exits older than the window lapse."""
    policy = RestartPolicy(backoff_seconds=0.5, stable_after_seconds=30, max_exits=2, window_seconds=60)
    stack, log, now = OneChild(crasher(tmp_path)), io.StringIO(), [0.0]
    supervisor = Supervisor(stack, policy, log=log, clock=lambda: now[0])
    exited_pid(stack.child)
    assert supervisor.supervise_once() is None
    now[0] = 0.5
    assert supervisor.supervise_once() is None
    pid = exited_pid(stack.child)
    now[0] = 100.0  # the restarted child is taken to have run 99.5 s before this exit was noticed
    assert supervisor.supervise_once() is None
    assert f"crasher (pid {pid}) exited, exit code 3; restart attempt 1 in 0.5 s" in log.getvalue()
