"""A change to a collection's access holds from the very next request, on every replica (issue 26, item 5).

Each test lets a reader read a collection in every dialect and in history until each of two catalog and
two history replicas holds an allow for it in its decision cache, then revokes, and asserts that the
very next reads are 404. The stack's decision cache keeps an allow for a whole second (the most the
settings permit), so only the access version catalog stores on the collection can end it: no test here
waits for anything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession

from collections_hub.stack import EmbeddedStack
from tests.e2e.test_lists import ok, personal
from tests.support import Hub, running_stack

# Each path read this often in a row: the gateway takes the replicas in turn, so each holds an allow.
READS = 4


@pytest.fixture(scope="module")
def replicated(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack with two catalog and two history replicas whose decision caches hold an allow for 1 s."""
    with running_stack(
        tmp_path_factory.mktemp("revocations"),
        mongodb_url,
        nats_url,
        "revoke",
        extra_env={"HUB_DECISION_CACHE_TTL_SECONDS": "1.0"},
        replicas={"catalog_service": 2, "history_service": 2},
    ) as stack:
        yield stack


@pytest.fixture
async def rhub(replicated: EmbeddedStack) -> AsyncIterator[Hub]:
    """A client of the replicated stack's gateway."""
    async with ClientSession() as http:
        yield Hub(replicated.gateway_url, http, replicated.admin_api_key)


@dataclass
class Owned:
    """A collection in its owner's personal project, and the owner's key."""

    collection_id: str
    name: str
    owner_id: int
    owner_key: str


async def owned(hub: Hub) -> Owned:
    """A new user and a private collection of its."""
    owner, key = await hub.user_with_key()
    name = f"revoked-{uuid.uuid4().hex[:6]}"
    created = await ok(hub, "POST", personal(owner["id"]), 201, key=key, json={"name": name})
    return Owned(created["id"], name, owner["id"], key)


def reads(collection: Owned) -> list[str]:
    """A read of the collection in each dialect, and of its history."""
    cid = collection.collection_id
    return [
        f"{personal(collection.owner_id)}/{collection.name}",
        f"/api/v2/collections/{cid}",
        f"/v1/collections/{cid}",
        f"/v1/collections/{cid}/history?pageSize=1",
    ]


async def statuses(hub: Hub, key: str, collection: Owned) -> dict[str, list[int]]:
    """The status of each read, made READS times in a row."""
    answers: dict[str, list[int]] = {}
    for path in reads(collection):
        answers[path] = [(await hub.call("GET", path, key=key)).status for _ in range(READS)]
    return answers


async def revoked_at_once(hub: Hub, key: str, collection: Owned, revoke: tuple[str, str]) -> None:
    """The reader reads everywhere (so every replica caches the allow); after the revoking call answers 200,
    every next read is 404."""
    before = await statuses(hub, key, collection)
    assert {path: s for path, s in before.items() if set(s) != {200}} == {}
    method, path = revoke
    await ok(hub, method, path, key=collection.owner_key)
    after = await statuses(hub, key, collection)
    assert {path: s for path, s in after.items() if set(s) != {404}} == {}


async def test_making_a_collection_private_holds_from_the_next_request(rhub: Hub) -> None:
    """A stranger who read a public collection gets 404 on the very next request after `private`."""
    collection = await owned(rhub)
    _, stranger_key = await rhub.user_with_key()
    base = f"/api/v2/collections/{collection.collection_id}"
    await ok(rhub, "POST", f"{base}/public", key=collection.owner_key)
    await revoked_at_once(rhub, stranger_key, collection, ("POST", f"{base}/private"))


async def test_unsharing_a_user_holds_from_the_next_request(rhub: Hub) -> None:
    """A shared user gets 404 on the very next request after it is removed from the collection."""
    collection = await owned(rhub)
    reader, reader_key = await rhub.user_with_key()
    users = f"/api/v2/collections/{collection.collection_id}/users/{reader['id']}"
    await ok(rhub, "POST", users, key=collection.owner_key)
    await revoked_at_once(rhub, reader_key, collection, ("DELETE", users))


async def test_removing_a_guest_holds_from_the_next_request(rhub: Hub) -> None:
    """An invited guest gets 404 on the very next request after it is removed from the collection."""
    collection = await owned(rhub)
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    invited = await ok(
        rhub,
        "POST",
        f"/api/v2/collections/{collection.collection_id}/guests",
        key=collection.owner_key,
        json={"email": email},
    )
    guest_id = next(u["id"] for u in invited["users"] if u["email"] == email)
    guest_key = (await rhub.create_key(guest_id))["key"]
    users = f"/api/v2/collections/{collection.collection_id}/users/{guest_id}"
    await revoked_at_once(rhub, guest_key, collection, ("DELETE", users))


async def test_unsharing_a_group_holds_from_the_next_request(rhub: Hub) -> None:
    """A member of a shared group gets 404 on the very next request after the group is unshared."""
    collection = await owned(rhub)
    member, member_key = await rhub.user_with_key()
    group = await ok(rhub, "POST", "/admin/groups", 201, json={"name": f"g-{uuid.uuid4().hex[:6]}"})
    await ok(
        rhub, "POST", f"/admin/groups/{group['id']}/members", 200, 201, json={"user_ids": [member["id"]]}
    )
    groups = f"/api/v2/collections/{collection.collection_id}/user_groups/{group['id']}"
    await ok(rhub, "POST", groups, key=collection.owner_key)
    await revoked_at_once(rhub, member_key, collection, ("DELETE", groups))


async def mongo_commands(hub: Hub, urls: list[str]) -> int:
    """MongoDB commands the processes at `urls` have sent on their request paths so far."""
    pattern = re.compile(r'^mongo_commands_total{client="api",command="\w+",service="\w+"} (\S+)$', re.M)
    total = 0.0
    for url in urls:
        total += sum(float(v) for v in pattern.findall(await (await hub.http.get(f"{url}/metrics")).text()))
    return int(total)


async def test_a_cached_allow_costs_no_more_than_before(rhub: Hub, replicated: EmbeddedStack) -> None:
    """A shared reader's warm reads cost one MongoDB command each in catalog (the collection it reads
    anyway) and none in access_service: the allow is served from the cache, checked against the access
    version on that document."""
    collection = await owned(rhub)
    reader, reader_key = await rhub.user_with_key()
    base = f"/api/v2/collections/{collection.collection_id}"
    await ok(rhub, "POST", f"{base}/users/{reader['id']}", key=collection.owner_key)
    catalog = replicated.replica_urls("catalog_service")
    access = [replicated.service_urls["access_service"]]
    for _ in range(READS):  # every replica decides once and keeps the allow
        await ok(rhub, "GET", base, key=reader_key)
    before = await mongo_commands(rhub, catalog), await mongo_commands(rhub, access)
    for _ in range(READS):
        await ok(rhub, "GET", base, key=reader_key)
    after = await mongo_commands(rhub, catalog), await mongo_commands(rhub, access)
    assert (after[0] - before[0], after[1] - before[1]) == (READS, 0)
