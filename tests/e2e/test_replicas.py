"""Per-service scaling with real processes: two catalog replicas behind the gateway share the work."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import ClientSession
from pymongo import AsyncMongoClient

from collections_hub.stack import EmbeddedStack
from tests.support import running_stack


@pytest.fixture(scope="module")
def replicated(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack with two catalog_service and two history_service processes."""
    with running_stack(
        tmp_path_factory.mktemp("replicas"),
        mongodb_url,
        nats_url,
        "rep",
        replicas={"catalog_service": 2, "history_service": 2},
    ) as stack:
        yield stack


async def served(http: ClientSession, url: str) -> int:
    """How many collection requests one catalog process has answered."""
    text = await (await http.get(f"{url}/metrics")).text()
    pattern = re.compile(r'^http_requests_total{[^}]*route="/v1/collections[^"]*"[^}]*} (\S+)$', re.M)
    return int(sum(float(v) for v in pattern.findall(text)))


async def test_requests_spread_across_catalog_replicas(replicated: EmbeddedStack) -> None:
    """Requests through the gateway reach both catalog processes; either reads what the other wrote."""
    headers = {"X-API-KEY": replicated.admin_api_key}
    urls = replicated.replica_urls("catalog_service")
    assert len(urls) == 2
    async with ClientSession() as http:
        ids = []
        for n in range(20):
            response = await http.post(
                f"{replicated.gateway_url}/v1/collections", json={"name": f"r{n}"}, headers=headers
            )
            assert response.status == 200
            ids.append((await response.json())["collection"]["id"])
        for collection_id in ids:
            response = await http.get(
                f"{replicated.gateway_url}/v1/collections/{collection_id}", headers=headers
            )
            assert response.status == 200
        counts = [await served(http, url) for url in urls]
    assert sum(counts) == 40
    assert min(counts) >= 10, counts


async def recorded(http: ClientSession, url: str) -> int:
    """Events one history process has recorded."""
    text = await (await http.get(f"{url}/metrics")).text()
    match = re.search(r"^history_events_recorded_total (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


async def test_history_replicas_record_each_event_once(replicated: EmbeddedStack) -> None:
    """Two history processes share one durable consumer: every event is recorded once, by one of them."""
    headers = {"X-API-KEY": replicated.admin_api_key}
    async with ClientSession() as http:
        ids = []
        for n in range(30):
            response = await http.post(
                f"{replicated.gateway_url}/api/v2/collections", json={"title": f"h{n}"}, headers=headers
            )
            ids.append((await response.json())["collection"]["id"])
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(replicated.mongodb_url)
        try:
            await client.admin.command("ping")
            events = client[f"{replicated.config.database_prefix}_history"]["events"]
            query = {"type": "catalog.collection.created", "collection_id": {"$in": ids}}
            for _ in range(100):
                if await events.count_documents(query) == len(ids):
                    break
                await asyncio.sleep(0.1)
            created = await events.find(query, {"_id": 1, "collection_id": 1}).to_list()
            records = await events.count_documents({"type": {"$exists": True}})
        finally:
            await client.close()
        assert sorted(doc["collection_id"] for doc in created) == sorted(ids)
        per_replica = [await recorded(http, url) for url in replicated.replica_urls("history_service")]
    assert sum(per_replica) == records, per_replica
