"""Events, restarts and the `collections-hub` command, with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import ClientSession

from collections_hub.processes import free_port, http_ok
from collections_hub.stack import EmbeddedStack
from tests.support import Hub, find_event, unique_email


async def test_change_publishes_an_event_carrying_the_request_id(hub: Hub, nats_url: str) -> None:
    """Creating a user emits `access.user.created` with the user id, the actor and the caller's request id."""
    response = await hub.call(
        "POST",
        "/admin/users",
        json={"email": unique_email(), "role": "user"},
        headers={**hub.admin(), "X-Request-ID": "req-event-check-1"},
    )
    user = await response.json()
    # Other stacks on this NATS server number their users too: the e-mail is what is unique.
    event = await find_event(
        nats_url, "hub.access.user.created", lambda e: e["data"]["email"] == user["email"]
    )
    assert event["ids"] == {"user_id": user["id"]}
    assert event["request_id"] == "req-event-check-1"
    assert event["type"] == "access.user.created"
    assert event["version"] == 1
    assert isinstance(event["actor"], int)


async def test_service_restart_keeps_users_and_keys(hub: Hub, stack: EmbeddedStack) -> None:
    """SIGTERM stops access_service cleanly (exit 0); after a restart its users and keys still work."""
    user, key = await hub.user_with_key()
    proc = stack.services["access_service"]
    assert await asyncio.to_thread(proc.stop) == 0
    stack.start_service("access_service")
    await asyncio.to_thread(stack.wait_ready, "access_service")
    await asyncio.sleep(1.0)  # let the gateway's cached principals lapse, so access_service answers
    response = await hub.call("GET", "/v1/me", key=key)
    assert response.status == 200
    assert (await response.json())["user_id"] == user["id"]


def _children(pid: int) -> set[int]:
    """Pids whose parent is `pid`."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _up(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URL", "NATS_URL")}
    env["HUB_ADMIN_API_KEY"] = "cli-test-admin-key"
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "collections-hub"),
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_up(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 90
    while not http_ok(f"http://127.0.0.1:{port}/readyz"):
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "stack did not come up"
        time.sleep(0.2)


async def test_cli_up_serves_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    """`collections-hub up` on its own servers serves, SIGTERM leaves no process, a restart keeps users."""
    port = free_port()
    headers = {"X-API-KEY": "cli-test-admin-key"}
    first = _up(tmp_path, port)
    try:
        await asyncio.to_thread(_wait_up, first, port)
        children = _children(first.pid)
        assert len(children) == 6  # nats-server, nx-27017, three services, gateway
        async with ClientSession() as http:
            created = await http.post(
                f"http://127.0.0.1:{port}/admin/users",
                json={"email": unique_email(), "role": "user"},
                headers=headers,
            )
            assert created.status == 201
            user = await created.json()
    finally:
        first.send_signal(signal.SIGTERM)
        output = (await asyncio.to_thread(first.communicate, timeout=60))[0].decode()
    assert first.returncode == 0, output
    assert "collections-hub is up at" in output
    assert not [pid for pid in children if _alive(pid)]

    second = _up(tmp_path, port)
    try:
        await asyncio.to_thread(_wait_up, second, port)
        async with ClientSession() as http:
            again = await http.get(f"http://127.0.0.1:{port}/admin/users/{user['id']}", headers=headers)
            assert again.status == 200
            assert (await again.json())["email"] == user["email"]
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.communicate, timeout=60)


async def test_admin_cli_creates_users_and_keys(stack: EmbeddedStack) -> None:
    """`collections-hub admin create-user` and `create-key` work against a running gateway."""
    cli = str(Path(sys.executable).parent / "collections-hub")
    common = ["--url", stack.gateway_url, "--api-key", stack.admin_api_key]
    made = await asyncio.to_thread(
        subprocess.run,
        [cli, "admin", "create-user", "--email", unique_email("cli"), "--role", "user", *common],
        capture_output=True,
        check=True,
    )
    user = json.loads(made.stdout)
    key = await asyncio.to_thread(
        subprocess.run,
        [cli, "admin", "create-key", "--user-id", str(user["id"]), *common],
        capture_output=True,
        check=True,
    )
    issued = json.loads(key.stdout)
    async with ClientSession() as http:
        response = await http.get(f"{stack.gateway_url}/v1/me", headers={"X-API-KEY": issued["key"]})
        assert (await response.json())["user_id"] == user["id"]
