"""MongoDB commands per member write for the whole system, counted on every client of every service: the
request path, the outbox relay and the consumers (issue 12). The relay's polling pass is set to an hour
so that only what each write causes is counted; it is the crash-recovery path and the batched clean-up,
which `make bench` section 3 counts under load."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest
from aiohttp import ClientSession

from collections_hub.stack import EmbeddedStack
from tests.support import Hub, new_project, running_stack

WRITES = 6
SAMPLE = re.compile(r'^mongo_commands_total{client="(\w+)",command="\w+",service="\w+"} (\S+)$', re.M)
RECORDED = re.compile(r"^history_events_recorded_total(?:{[^}]*})? (\S+)$", re.M)


@pytest.fixture(scope="module")
def quiet(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack whose periodic passes (outbox polling, member and view recovery) wait an hour."""
    with running_stack(
        tmp_path_factory.mktemp("quiet"),
        mongodb_url,
        nats_url,
        "quiet",
        extra_env={
            "HUB_OUTBOX_POLL_INTERVAL_SECONDS": "3600",
            "HUB_MEMBER_RECOVERY_INTERVAL_SECONDS": "3600",
        },
    ) as stack:
        yield stack


async def counts(http: ClientSession, stack: EmbeddedStack) -> dict[tuple[str, str], float]:
    """Commands sent so far, by (service, client label)."""
    totals: dict[tuple[str, str], float] = {}
    for service in ("catalog_service", "access_service", "history_service"):
        text = await (await http.get(f"{stack.service_urls[service]}/metrics")).text()
        for client, value in SAMPLE.findall(text):
            totals[service, client] = totals.get((service, client), 0.0) + float(value)
    return totals


async def recorded(http: ClientSession, stack: EmbeddedStack) -> float:
    text = await (await http.get(f"{stack.service_urls['history_service']}/metrics")).text()
    return sum(float(value) for value in RECORDED.findall(text))


async def until_recorded(http: ClientSession, stack: EmbeddedStack, at_least: float) -> None:
    deadline = time.monotonic() + 30
    while await recorded(http, stack) < at_least:
        assert time.monotonic() < deadline, "history did not record the events"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)  # nothing more to come: a consumer's last command after its count


async def test_a_member_write_costs_three_commands_on_the_path_none_in_the_relay_and_one_in_history(
    quiet: EmbeddedStack,
) -> None:
    headers = {"X-API-KEY": quiet.admin_api_key}
    async with ClientSession(base_url=quiet.gateway_url, headers=headers) as http:
        created = await (await http.post("/v1/collections", json={"name": "counted"})).json()
        cid = created["collection"]["id"]
        assets = []
        for n in range(49 * (WRITES + 1)):
            response = await http.post("/v1/assets", json={"name": f"a{n}", "id": f"counted-{n}"})
            assert response.status == 201
            assets.append((await response.json())["id"])
        batches = [assets[49 * k : 49 * (k + 1)] for k in range(WRITES + 1)]
        # One write first: caches warm (the caller's key, its permission on the collection, the registry).
        assert (await http.put(f"/v1/collections/{cid}/assets", json={"assetIds": batches[0]})).status == 200
        await until_recorded(http, quiet, len(assets) + 2)
        before = await counts(http, quiet)
        for batch in batches[1:]:
            assert (await http.put(f"/v1/collections/{cid}/assets", json={"assetIds": batch})).status == 200
        await until_recorded(http, quiet, len(assets) + 2 + WRITES)
        after = await counts(http, quiet)
    spent = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert spent.get(("catalog_service", "api"), 0) == 3 * WRITES  # begin, apply, finish
    assert spent.get(("catalog_service", "relay"), 0) == 0  # published from memory, no read
    assert spent.get(("catalog_service", "consumer"), 0) == 0
    assert spent.get(("history_service", "consumer"), 0) <= WRITES  # at most one per event
    assert spent.get(("history_service", "api"), 0) == 0
    # access_service: none while catalog's cached allow lasts; its 2 reads when it lapsed (0.5 s) meanwhile.
    assert spent.get(("access_service", "api"), 0) <= 2
    assert spent.get(("access_service", "relay"), 0) == 0  # a decision (a POST) wakes no relay


async def test_a_dialect_a_read_costs_one_command_and_one_more_only_when_it_has_members(
    quiet: EmbeddedStack,
) -> None:
    """A collection's answer in dialect A lists its members: read only when its count says there are some."""
    async with ClientSession() as http:
        hub = Hub(quiet.gateway_url, http, quiet.admin_api_key)
        base = await new_project(hub)
        assert (await hub.call("POST", base, json={"name": "read"})).status == 201

        async def spent_on_get() -> tuple[float, dict[str, object]]:
            before = await counts(http, quiet)
            response = await hub.call("GET", f"{base}/read")
            assert response.status == 200
            after = await counts(http, quiet)
            key = ("catalog_service", "api")
            return after[key] - before[key], await response.json()

        await spent_on_get()  # caches warm (the caller's key, its permission)
        spent, body = await spent_on_get()
        assert (spent, body["members"]) == (1, [])
        added = await hub.call("POST", f"{base}/read/members", json={"add": ["n1", "n2"]})
        assert added.status == 200
        spent, body = await spent_on_get()
        assert (spent, body["members"]) == (2, ["n1", "n2"])
        removed = await hub.call("DELETE", f"{base}/read/members", json={"remove": ["n1", "n2"]})
        assert removed.status == 200
        spent, body = await spent_on_get()
        assert (spent, body["members"]) == (1, [])
