"""HEAD to every route of every dialect answers a head and no body, and leaves every connection in step.

The routes are the gateway's own description of them (`/openapi/{a,b,c}.json`), their path parameters
filled so that each names a real object of the caller: a collection with members, its history, a user
and a group it is shared with. Through the gateway, an owner's HEADs run between and beside other
users' GETs and writes, which must answer exactly as they do alone and take effect exactly once; straight
to the services, raw sockets send HEAD then GET pipelined on one connection, and the GET's answer must
be the one it gets on a connection of its own (docs/security.md, "HEAD answers carry no body").
No sleep synchronises anything: the one wait is a poll until the history projection shows exactly the
entries the setup's writes make, before any answer is recorded as a reference; after that, nothing the
readers read can change.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collections_hub.stack import EmbeddedStack
from gateway.routing import service_for
from shared.principal import Principal, forwarded_headers
from tests.e2e.test_openapi import fetch
from tests.raw_http import RawAnswer, RawRequest, exchange
from tests.support import Hub, json_of, wait_for_history

DIALECTS = ("a", "b", "c")
MEMBERS = 1500  # a streamed answer of ~40 KB: what a HEAD must not send
ROUNDS = 3
WRITES_PER_ROUND = 6
# The history entries the setup's writes make: created, members added, shared with a user, with a group.
OWNER_HISTORY = 4
READER_HISTORY = 2


@dataclass
class World:
    """A user's key and the values that fill the documented path parameters with its own objects."""

    user: dict[str, Any]
    key: str
    values: dict[str, str]
    collection_id: str
    name: str

    def path(self, template: str) -> str:
        """The documented path with every parameter filled (an unknown one fails: fill it in `world`)."""
        return re.sub(r"\{(\w+)\}", lambda m: self.values[m.group(1)], template)

    def personal(self) -> str:
        """Dialect A's base path of the user's personal project."""
        return f"/namespaces/personal/projects/user-{self.user['id']}/collections"


@dataclass
class Log:
    """Every status the gateway answered during a run, to find a 5xx anywhere."""

    statuses: list[tuple[str, str, int]] = field(default_factory=list)

    def server_errors(self) -> list[tuple[str, str, int]]:
        """The answers that were 5xx."""
        return [entry for entry in self.statuses if entry[2] >= 500]


async def documented_paths(hub: Hub) -> list[str]:
    """Every path of the three dialect documents, once each (HEAD is sent to each, whatever it allows)."""
    paths = {path for name in DIALECTS for path in (await fetch(hub, name))["paths"]}
    return sorted(paths)


async def ok(hub: Hub, method: str, path: str, key: str, expected: int = 200, **kwargs: Any) -> Any:
    """The decoded body of a setup call that must answer `expected`."""
    status, body = await json_of(hub, method, path, key=key, **kwargs)
    assert status == expected, (method, path, status, body)
    return body


async def world(hub: Hub, label: str, history: int, *, shared: bool) -> World:
    """A new user with a collection of `MEMBERS` node members in its personal project (and, when `shared`,
    shared with another user and a group), its history showing every entry those writes make."""
    user, key = await hub.user_with_key()
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    cid = (await ok(hub, "POST", "/v1/collections", key, json={"name": name}))["collection"]["id"]
    values = {
        "slug": "personal",
        "project": f"user-{user['id']}",
        "project_slug": f"user-{user['id']}",
        "name": name,
        "collection_id": cid,
        "cursor": "0",
    }
    found = World(user, key, values, cid, name)
    members = [f"{label}-node-{n:05d}" for n in range(MEMBERS)]
    await ok(hub, "POST", f"{found.personal()}/{name}/members", key, json={"add": members})
    if shared:
        friend = await hub.create_user()
        group = await ok(hub, "POST", "/admin/groups", hub.admin_key, 201, json={"name": f"g-{name}"})
        await ok(hub, "POST", f"/api/v2/collections/{cid}/users/{friend['id']}", key)
        await ok(hub, "POST", f"/api/v2/collections/{cid}/user_groups/{group['id']}", key)
        values |= {"user_id": str(friend["id"]), "group_id": str(group["id"])}
    await wait_for_history(hub, cid, history)
    entries = await ok(hub, "GET", f"/v1/collections/{cid}/history?pageSize=100", key)
    assert len(entries["data"]) == history, entries  # no entry may arrive after the references are taken
    return found


async def answer(hub: Hub, method: str, path: str, key: str, log: Log, **kwargs: Any) -> tuple[int, bytes]:
    """Status and body bytes of one call through the gateway, logged."""
    response = await hub.call(method, path, key=key, **kwargs)
    body = await response.read()
    log.statuses.append((method, path, response.status))
    return response.status, body


def reader_paths(reader: World) -> list[str]:
    """What the reader reads while the HEADs run: its collection in each dialect, the lists, the history."""
    cid, base = reader.collection_id, reader.personal()
    return [
        f"{base}/{reader.name}",
        f"{base}?pageSize=200",
        f"{base}/{reader.name}/history",
        f"/api/v2/collections/{cid}",
        "/api/v2/collections",
        f"/api/v2/collections/{cid}/history/0",
        f"/api/v2/collections/{cid}/users",
        f"/v1/collections/{cid}",
        "/v1/collections?pageSize=100",
        f"/v1/collections/{cid}/history",
    ]


@dataclass
class Writer:
    """A user that creates collections and adds members while the HEADs run, and remembers what it did."""

    world: World
    created: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    async def write(self, hub: Hub, n: int, log: Log) -> None:
        """Write number `n`: even ones create a collection (in C, or in A's personal project), odd ones add
        two new members to the writer's collection; each must answer that it did so, once."""
        base = self.world.personal()
        if n % 2 == 0:
            name = f"w-{n:04d}"
            self.created.append(name)
            path, created = ("/v1/collections", 200) if n % 4 == 0 else (base, 201)
            status, body = await answer(hub, "POST", path, self.world.key, log, json={"name": name})
            assert status == created, (path, name, status, body)
        else:
            ids = [f"added-{n:04d}-{k}" for k in range(2)]
            self.added += ids
            path = f"{base}/{self.world.name}/members"
            status, body = await answer(hub, "POST", path, self.world.key, log, json={"add": ids})
            assert (status, json.loads(body)["added"]) == (200, 2), (ids, status, body)

    async def check(self, hub: Hub) -> None:
        """Every write's effect is there exactly once: each created name once in the project, each added
        member once in the collection, nothing else."""
        base = self.world.personal()
        listed = await ok(hub, "GET", f"{base}?pageSize=200", self.world.key)
        names = sorted(c["name"] for c in listed["collections"])
        assert names == sorted([self.world.name, *self.created])
        assert listed["total"] == len(names)
        collection = await ok(hub, "GET", f"{base}/{self.world.name}", self.world.key)
        members = collection["members"]
        assert len(members) == len(set(members)) == MEMBERS + len(self.added)
        assert set(self.added) <= set(members)


async def test_heads_beside_other_users_reads_and_writes_change_no_answer(hub: Hub) -> None:
    """An owner's HEAD to every documented route, sequenced between and run beside another user's GETs
    and a third user's creates and member adds: each HEAD answers its GET's status with no body, each
    GET its reference answer byte for byte, each write succeeds once, and nothing answers 5xx."""
    owner = await world(hub, "owner", OWNER_HISTORY, shared=True)
    reader = await world(hub, "reader", READER_HISTORY, shared=False)
    writer = Writer(await world(hub, "writer", READER_HISTORY, shared=False))
    heads = [owner.path(template) for template in await documented_paths(hub)]
    reads = reader_paths(reader)
    log = Log()
    # The references: each route's answer to a GET alone, before any HEAD was sent.
    statuses = {path: (await answer(hub, "GET", path, owner.key, log))[0] for path in heads}
    assert 200 in statuses.values()
    reference = {path: await answer(hub, "GET", path, reader.key, log) for path in reads}
    assert {status for status, _ in reference.values()} == {200}

    async def head(path: str) -> None:
        assert await answer(hub, "HEAD", path, owner.key, log) == (statuses[path], b""), path

    async def read(path: str) -> None:
        assert await answer(hub, "GET", path, reader.key, log) == reference[path], path

    writes = iter(range(10_000))
    # One after another: each request takes the upstream connection the one before it left.
    for _ in range(ROUNDS):
        for n, path in enumerate(heads):
            await head(path)
            await read(reads[n % len(reads)])
            if n % 3 == 0:
                await writer.write(hub, next(writes), log)
    # All at once: HEADs share the gateway's upstream connections with everything else in flight.
    for _ in range(ROUNDS):
        await asyncio.gather(
            *(head(path) for path in heads),
            *(read(path) for path in reads),
            *(writer.write(hub, next(writes), log) for _ in range(WRITES_PER_ROUND)),
        )
    for path in reads:
        await read(path)
    await writer.check(hub)
    assert log.server_errors() == []


def principal_of(found: World) -> Principal:
    """The principal the gateway forwards for the user's API key."""
    return Principal(user_id=found.user["id"], email=found.user["email"], role="user", auth="api_key")


async def pipelined(url: str, path: str, headers: dict[str, str]) -> tuple[RawAnswer, RawAnswer, RawAnswer]:
    """A GET alone on its own connection, then HEAD and GET pipelined on one: the three answers (the second
    connection must carry nothing after the GET's answer)."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    (alone,), rest = await exchange(address.hostname, address.port, [RawRequest("GET", path, headers)])
    assert rest == b"", (url, path, rest[:200])
    (head, get), rest = await exchange(
        address.hostname,
        address.port,
        [RawRequest("HEAD", path, headers), RawRequest("GET", path, headers)],
    )
    assert rest == b"", (url, path, rest[:200])
    return alone, head, get


async def test_head_then_get_pipelined_on_every_route_straight_and_through_the_gateway(
    hub: Hub, stack: EmbeddedStack
) -> None:
    """Straight to every replica of the service that owns each documented route, and to the gateway: HEAD
    then GET on one kept-alive connection; the HEAD is a head alone with the GET's status, and the GET's
    answer is well-formed JSON, the same status and bytes as on a connection of its own."""
    owner = await world(hub, "direct", OWNER_HISTORY, shared=True)
    forwarded = forwarded_headers(stack.internal_secret, principal_of(owner), None)
    streamed = 0
    for template in await documented_paths(hub):
        path = owner.path(template)
        service = service_for(path)
        assert service is not None, path
        replicas = stack.replica_urls(f"{service}_service")
        assert replicas, service
        targets = [(url, forwarded) for url in replicas]
        targets.append((stack.gateway_url, {"X-API-KEY": owner.key}))
        for url, headers in targets:
            alone, head, get = await pipelined(url, path, headers)
            assert alone.status < 500, (url, path, alone.status)
            assert head.status == alone.status, (url, path)
            assert head.headers.get("Content-Type") == alone.headers.get("Content-Type"), (url, path)
            assert (get.status, get.body) == (alone.status, alone.body), (url, path)
            json.loads(get.body)
            streamed += alone.headers.get("Transfer-Encoding") == "chunked"
    assert streamed  # the streamed answers, the ones that sent a body to HEAD, were among them
