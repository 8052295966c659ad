"""`collections-hub views verify` against a running stack whose own background verifier is off: a hub at rest
checks clean (exit 0); a view that drifted (a collection listed to a reader who may not read it, as the
audit's leak left one) is reported (exit 4) and left; `--repair` repairs it, and the reader's list is right
again; a key that is not an admin's is refused. And on a stack whose catalog walks the views by itself, a
drifted view is repaired and counted with no command run (docs/scale.md, "Lists: the verifier")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from pymongo import AsyncMongoClient

from catalog_service.reader_views import ReaderViews, user_reader, view_key
from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import ViewRepository
from collections_hub.stack import EmbeddedStack
from shared.mongo import Document
from tests.cli.test_errors import clean_env, run
from tests.integration.catalog_service.test_view_verifier import corrupt
from tests.support import Hub, json_of, running_stack


@pytest.fixture(scope="module")
def quiet_stack(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack whose catalog checks no view by itself, so that only the command under test does."""
    with running_stack(
        tmp_path_factory.mktemp("views"),
        mongodb_url,
        nats_url,
        "views",
        extra_env={"HUB_VIEWS_VERIFY_PER_PASS": "0", "HUB_VIEWS_VERIFY_CONFIRM_SECONDS": "0"},
    ) as stack:
        yield stack


@pytest.fixture
async def hub(quiet_stack: EmbeddedStack) -> AsyncIterator[Hub]:
    async with ClientSession() as http:
        yield Hub(quiet_stack.gateway_url, http, quiet_stack.admin_api_key)


def verify(stack: EmbeddedStack, tmp_path: Path, *args: str) -> tuple[int, dict[str, object]]:
    """Run the command as an operator does; its exit code and JSON report."""
    result = run(
        "views",
        "verify",
        "--json",
        *args,
        "--url",
        stack.gateway_url,
        env=clean_env(tmp_path, HUB_ADMIN_API_KEY=stack.admin_api_key),
    )
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


async def test_a_leaked_entry_is_reported_then_repaired_and_the_list_is_right_again(
    hub: Hub, quiet_stack: EmbeddedStack, tmp_path: Path
) -> None:
    """Bob's list holds Alice's private collection behind the rules' back: `verify` says so and exits 4;
    `verify --repair` removes it from Bob's list, and a last `verify` exits 0."""
    _, alice_key = await hub.user_with_key()
    bob, bob_key = await hub.user_with_key()
    status, created = await json_of(hub, "POST", "/v1/collections", key=alice_key, json={"name": "secret"})
    assert status == 200, created
    collection_id = created["collection"]["id"]
    code, report = verify(quiet_stack, tmp_path)
    assert (code, report["drifted_views"]) == (0, [])
    assert int(str(report["checked"])) > 0

    client: AsyncMongoClient[Document] = AsyncMongoClient(quiet_stack.config.mongodb_url or "")
    try:
        db = client[f"{quiet_stack.config.database_prefix}_catalog"]
        await corrupt(
            ReaderViews(ViewRepository(db), CatalogRepository(db)),
            view_key(user_reader(bob["id"])),
            add=collection_id,
        )
    finally:
        await client.close()
    status, listed = await json_of(hub, "GET", "/v1/collections", key=bob_key)
    assert [c["id"] for c in listed["collections"]] == [collection_id]  # the leak, as the audit saw it

    code, report = verify(quiet_stack, tmp_path)
    assert code == 4
    assert report["drifted_views"] == [f"u:{bob['id']}//"]
    assert report["extra"] == 1
    status, listed = await json_of(hub, "GET", "/v1/collections", key=bob_key)
    assert [c["id"] for c in listed["collections"]] == [collection_id]  # reported, not repaired

    code, report = verify(quiet_stack, tmp_path, "--repair")
    assert (code, report["extra"], report["repaired"]) == (4, 1, True)
    status, listed = await json_of(hub, "GET", "/v1/collections", key=bob_key)
    assert (status, listed["collections"]) == (200, [])
    code, report = verify(quiet_stack, tmp_path)
    assert (code, report["drifted_views"]) == (0, [])


async def test_only_an_admin_may_verify(hub: Hub, quiet_stack: EmbeddedStack, tmp_path: Path) -> None:
    """A user's key gets the gateway's 403 (admin role required), in one line, exit 1."""
    _, key = await hub.user_with_key()
    result = run(
        "views", "verify", "--url", quiet_stack.gateway_url, "--api-key", key, env=clean_env(tmp_path)
    )
    assert result.returncode == 1
    assert "403" in result.stderr
    assert "Traceback" not in result.stderr
    status, _ = await json_of(hub, "POST", "/admin/views/verify", key=key, json={})
    assert status == 403


@pytest.fixture(scope="module")
def checking_stack(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack whose catalog walks every view often (each recovery round, every 0.2 s)."""
    with running_stack(
        tmp_path_factory.mktemp("views-checked"),
        mongodb_url,
        nats_url,
        "checked",
        extra_env={
            "HUB_VIEWS_VERIFY_PER_PASS": "500",
            "HUB_VIEWS_VERIFY_CONFIRM_SECONDS": "0",
            "HUB_MEMBER_RECOVERY_INTERVAL_SECONDS": "0.2",
        },
    ) as stack:
        yield stack


async def repairs_counted(catalog_url: str) -> float:
    """`catalog_view_repairs_total`, summed over its drift kinds, as catalog exports it."""
    async with ClientSession() as http, http.get(f"{catalog_url}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("catalog_view_repairs_total{")
    )


async def test_catalog_finds_repairs_and_counts_a_drifted_view_by_itself(
    checking_stack: EmbeddedStack,
) -> None:
    """With no command run, catalog's own walk over the views removes a leaked entry from a reader's list
    and counts the repair in its metrics (what the HubViewRepairs alert reads)."""
    async with ClientSession() as http:
        hub = Hub(checking_stack.gateway_url, http, checking_stack.admin_api_key)
        _, alice_key = await hub.user_with_key()
        bob, bob_key = await hub.user_with_key()
        status, created = await json_of(hub, "POST", "/v1/collections", key=alice_key, json={"name": "mine"})
        assert status == 200, created
        client: AsyncMongoClient[Document] = AsyncMongoClient(checking_stack.config.mongodb_url or "")
        try:
            db = client[f"{checking_stack.config.database_prefix}_catalog"]
            await corrupt(
                ReaderViews(ViewRepository(db), CatalogRepository(db)),
                view_key(user_reader(bob["id"])),
                add=created["collection"]["id"],
            )
        finally:
            await client.close()
        (catalog_url,) = checking_stack.replica_urls("catalog_service")
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # bounded: the walk takes a fraction of a second here
            _, listed = await json_of(hub, "GET", "/v1/collections", key=bob_key)
            if listed["collections"] == [] and await repairs_counted(catalog_url) >= 1:
                break
            assert asyncio.get_running_loop().time() < deadline, "the drifted view was never repaired"
            await asyncio.sleep(0.2)
