"""The running stack as the benchmarks see it: callers, their keys, metrics, processes and fixtures."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from pymongo import AsyncMongoClient

from collections_hub.stack import EmbeddedStack

SERVICES = ("catalog_service", "access_service", "history_service")
PROCESSES = ("gateway", *SERVICES)
_SAMPLE = re.compile(r"^mongo_commands_total\{([^}]*)\} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')

Document = dict[str, Any]


def process_tree(pid: int) -> list[int]:
    """The process and its children (nginx's workers under its master), from /proc."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (all their threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class CpuMeter:
    """CPU time per named process between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.trees = {name: process_tree(pid) for name, pid in pids.items()}
        self.started: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        """Take the first reading."""
        self.started = {name: cpu_seconds(pids) for name, pids in self.trees.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds each process used since `start()`."""
        self.used = {name: cpu_seconds(pids) - self.started[name] for name, pids in self.trees.items()}
        return self.used


def client_total(counts: dict[tuple[str, str], float], *clients: str) -> float:
    """Commands of the given client labels (all labels when none are given)."""
    return sum(v for (client, _), v in counts.items() if not clients or client in clients)


def delta(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float], client: str
) -> dict[str, float]:
    """Commands by name that one client label sent between two readings."""
    names = {command for (c, command) in after if c == client}
    spent = {name: after.get((client, name), 0) - before.get((client, name), 0) for name in names}
    return {name: n for name, n in sorted(spent.items()) if n}


@dataclass
class Actor:
    """A caller of the public API: a user, its API key, and the principal the gateway sends inward."""

    label: str
    user_id: int
    key: str
    key_id: str
    principal_json: str

    def headers(self) -> dict[str, str]:
        """How this caller authenticates at the gateway."""
        return {"X-API-KEY": self.key}


@dataclass
class Bench:
    """Everything a section needs: the stack, an HTTP session, the callers and where to write."""

    stack: EmbeddedStack
    http: ClientSession
    mongo: AsyncMongoClient[Document]
    results_dir: Path
    work_dir: Path
    seconds: float
    threads: int
    connections: int
    admin: Actor | None = None
    owner: Actor | None = None
    namespace: str = ""
    project_slug: str = "main"
    project_id: str = ""
    # Dialect A needs a write role on the project; the owner gets editor, else the admin stands in.
    a_actor: Actor | None = None
    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)

    # --- addresses ----------------------------------------------------------------------------------------
    @property
    def gateway(self) -> str:
        """The gateway's base URL."""
        return self.stack.gateway_url

    def url(self, process: str) -> str:
        """A process's base URL (`gateway` or a service name)."""
        return self.stack.gateway_url if process == "gateway" else self.stack.service_urls[process]

    def pid(self, process: str) -> int:
        """The pid of a stack process (`gateway`, a service, `nx-27017`, `nats-server`)."""
        if process in self.stack.services:
            return self.stack.services[process].pid
        for proc in self.stack.infrastructure:
            if proc.name == process:
                return proc.pid
        raise KeyError(f"{process} is not a process this run started")

    def db(self, service: str) -> Any:
        """A service's own database, read directly (the benchmark may; services never do)."""
        short = service.removesuffix("_service")
        return self.mongo[f"{self.stack.config.database_prefix}_{short}"]

    def bench_db(self, name: str) -> Any:
        """A scratch database of this run (floor copies, prototypes)."""
        return self.mongo[f"{self.stack.config.database_prefix}_bench_{name}"]

    @property
    def a_base(self) -> str:
        """Dialect A's collections path of the bench project."""
        return f"/namespaces/{self.namespace}/projects/{self.project_slug}/collections"

    # --- calls --------------------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        *,
        actor: Actor | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request through the gateway; the status and the decoded JSON body (or text)."""
        who = actor or self.admin
        assert who is not None
        sent = {**who.headers(), **(headers or {})}
        async with self.http.request(method, f"{self.gateway}{path}", json=json, headers=sent) as response:
            raw = await response.read()
            try:
                body: Any = await response.json(content_type=None) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            return response.status, body

    async def ok(
        self, method: str, path: str, *, actor: Actor | None = None, json: Any = None, expect: int = 200
    ) -> Any:
        """A request that must succeed with `expect` (any 2xx when it says 200); its body."""
        status, body = await self.call(method, path, actor=actor, json=json)
        if status != expect and not (expect == 200 and 200 <= status < 300):
            raise RuntimeError(f"{method} {path} -> {status} {str(body)[:300]}")
        return body

    # --- metrics ------------------------------------------------------------------------------------------
    async def metrics_text(self, process: str) -> str:
        """A process's Prometheus exposition."""
        # The gateway's /metrics needs the admin role on its public port (docs/security.md).
        headers = self.admin.headers() if process == "gateway" and self.admin else {}
        async with self.http.get(f"{self.url(process)}/metrics", headers=headers) as response:
            return await response.text()

    async def mongo_counts(self, process: str) -> dict[tuple[str, str], float]:
        """`mongo_commands_total` of one process by (client label, command): api, relay, consumer."""
        totals: dict[tuple[str, str], float] = {}
        for labels, value in _SAMPLE.findall(await self.metrics_text(process)):
            parsed = dict(_LABEL.findall(labels))
            key = (parsed.get("client", "?"), parsed.get("command", "?"))
            totals[key] = totals.get(key, 0.0) + float(value)
        return totals

    async def all_counts(self) -> dict[str, dict[tuple[str, str], float]]:
        """Per service, per (client, command): commands sent so far."""
        counts = await asyncio.gather(*(self.mongo_counts(s) for s in SERVICES))
        return dict(zip(SERVICES, counts, strict=True))

    async def metric_value(self, process: str, name: str) -> float | None:
        """The sum of one metric's samples in a process (None when it does not expose it)."""
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
        found = pattern.findall(await self.metrics_text(process))
        return sum(float(v) for v in found) if found else None

    async def quiesce(self, settle: float = 0.15, limit: float = 5.0) -> None:
        """Wait until no service sends request-path or consumer commands (earlier writes are digested)."""
        deadline = time.monotonic() + limit
        previous = await self.all_counts()
        while time.monotonic() < deadline:
            await asyncio.sleep(settle)
            current = await self.all_counts()
            if all(
                client_total(current[s], "api", "consumer") == client_total(previous[s], "api", "consumer")
                for s in SERVICES
            ):
                return
            previous = current

    async def settle(self, limit: float = 30.0) -> None:
        """Wait until catalog's outbox is drained and history has recorded what it was sent."""
        deadline = time.monotonic() + limit
        previous = None
        while time.monotonic() < deadline:
            pending = await self.db("catalog_service")["collections"].count_documents(
                {"outbox_count": {"$gt": 0}}
            )
            recorded = await self.metric_value("history_service", "history_events_recorded_total")
            if pending == 0 and recorded == previous:
                return
            previous = recorded
            await asyncio.sleep(0.3)

    # --- callers ------------------------------------------------------------------------------------------
    async def create_actor(self, label: str, role: str = "user") -> Actor:
        """A new user with an API key, created through the admin API."""
        email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
        user = await self.ok("POST", "/admin/users", json={"email": email, "role": role}, expect=201)
        key = await self.ok("POST", f"/admin/users/{user['id']}/api-keys", json={"name": "bench"}, expect=201)
        async with self.http.get(f"{self.gateway}/v1/me", headers={"X-API-KEY": key["key"]}) as response:
            principal = await response.text()
            if response.status != 200:
                raise RuntimeError(f"/v1/me for a new key -> {response.status} {principal[:200]}")
        return Actor(label, int(user["id"]), key["key"], str(key["id"]), principal)


async def open_bench(
    stack: EmbeddedStack, *, results_dir: Path, work_dir: Path, seconds: float, threads: int, connections: int
) -> Bench:
    """Connect to the running stack and create the admin caller, a project and its owner."""
    http = ClientSession(connector=TCPConnector(limit=64), timeout=ClientTimeout(total=120))
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_url, tz_aware=True, w=1)
    await mongo.admin.command("ping")
    bench = Bench(stack, http, mongo, results_dir, work_dir, seconds, threads, connections)
    bench.admin = Actor("admin", 1, stack.admin_api_key, "", "")
    async with http.get(f"{stack.gateway_url}/v1/me", headers=bench.admin.headers()) as response:
        me = await response.json()
        bench.admin = Actor("admin", int(me["user_id"]), stack.admin_api_key, "", await response.text())
    bench.namespace = f"bench-{uuid.uuid4().hex[:8]}"
    await bench.ok("POST", "/admin/namespaces", json={"slug": bench.namespace}, expect=201)
    project = await bench.ok(
        "POST",
        f"/admin/namespaces/{bench.namespace}/projects",
        json={"slug": bench.project_slug},
        expect=201,
    )
    bench.project_id = project["id"]
    bench.owner = await bench.create_actor("owner")
    status, body = await bench.call(
        "PUT",
        f"/admin/namespaces/{bench.namespace}/projects/{bench.project_slug}/members/{bench.owner.user_id}",
        json={"role": "editor"},
    )
    if status == 200:
        # The role must also be honoured by catalog_service (it asks access_service for it).
        status, body = await bench.call(
            "POST", bench.a_base, actor=bench.owner, json={"name": f"probe-{uuid.uuid4().hex[:6]}"}
        )
    if status in (200, 201):
        bench.a_actor = bench.owner
    else:
        bench.a_actor = bench.admin
        bench.notes.append(
            f"An editor on the project could not create a dialect-A collection ({status}: "
            f"{str(body)[:90]}), so dialect A is driven as the admin (whose permission checks are local)."
        )
    return bench


async def close_bench(bench: Bench) -> None:
    """Close the HTTP session and the Mongo client."""
    await bench.http.close()
    await bench.mongo.close()
