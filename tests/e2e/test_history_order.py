"""History lists a collection's events in the order they happened, whichever service made them, and its
cursors neither skip nor repeat an entry while events arrive, late ones from another service included."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from typing import Any

import nats

from shared.events import EventEnvelope
from tests.support import Hub, json_of, wait_for_history

COLLECTIONS = 30
PAGE = 5


async def create_link_update_link(hub: Hub, first: int, second: int) -> tuple[str, list[tuple[str, Any]]]:
    """One collection through the gateway: created (catalog), shared (access), renamed (catalog), shared
    again (access), each call answered before the next; the entries history must show, newest first."""
    title = f"order-{uuid.uuid4().hex[:8]}"
    status, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": title})
    assert status == 200, body
    cid = str(body["collection"]["id"])
    assert (await hub.call("POST", f"/api/v2/collections/{cid}/users/{first}")).status == 200
    assert (await hub.call("PUT", f"/api/v2/collections/{cid}", json={"title": f"{title}-2"})).status == 200
    assert (await hub.call("POST", f"/api/v2/collections/{cid}/users/{second}")).status == 200
    expected = [
        ("USER_LINKED", second),
        ("COLLECTION_UPDATED", None),
        ("USER_LINKED", first),
        ("COLLECTION_CREATED", None),
    ]
    return cid, expected


def shown(entry: dict[str, Any]) -> tuple[str, Any]:
    """An entry's type and the user it names (None when it names none)."""
    users = [t["target"]["id"] for t in entry["event_targets"] if t["target_type"] == "User"]
    return entry["event_type"], users[0] if users else None


async def test_history_lists_events_of_both_services_in_the_order_of_the_calls(hub: Hub) -> None:
    """30 collections, each created, shared, renamed and shared again: every history is in call order."""
    first, second = (await hub.create_user())["id"], (await hub.create_user())["id"]
    sequences = await asyncio.gather(
        *(create_link_update_link(hub, first, second) for _ in range(COLLECTIONS))
    )
    out_of_order = {}
    for cid, expected in sequences:
        await wait_for_history(hub, cid, len(expected))
        status, body = await json_of(hub, "GET", f"/api/v2/collections/{cid}/history/0")
        assert status == 200
        entries = body["history"]["results"]
        if [shown(entry) for entry in entries] != expected:
            out_of_order[cid] = [shown(entry) for entry in entries]
        assert [entry["id"] for entry in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert out_of_order == {}, f"{len(out_of_order)} of {COLLECTIONS} out of order"


def moment(stored: str) -> datetime:
    """A stored `created_at` (`2026-01-01T00:00:00.000Z`) as an aware datetime."""
    return datetime.strptime(stored, "%Y-%m-%dT%H:%M:%S.%f%z")


async def everything(hub: Hub, cid: str) -> list[dict[str, Any]]:
    """The whole history of a collection, newest first, in one page."""
    status, body = await json_of(hub, "GET", f"/v1/collections/{cid}/history?pageSize=100")
    assert status == 200
    entries: list[dict[str, Any]] = body["data"]
    return entries


async def toggle(hub: Hub, cid: str, times: int) -> None:
    """`times` visibility changes through the gateway (access_service's events)."""
    for n in range(times):
        change = "public" if n % 2 == 0 else "private"
        assert (await hub.call("POST", f"/api/v2/collections/{cid}/{change}")).status == 200


async def publish_late(nats_url: str, cid: str, occurred_at: datetime) -> None:
    """An event of the collection reaching the stream now though it happened at `occurred_at`, as from a
    service whose relay was held up (published as a relay does, `Nats-Msg-Id` = event id)."""
    event = EventEnvelope(
        type="access.collection.made_public",
        ids={"collection_id": cid},
        data={"is_public": True},
        occurred_at=occurred_at,
    )
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            event.subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id}
        )
    finally:
        await nc.close()


def between(entries: list[dict[str, Any]], start: int, stop: int) -> tuple[datetime, int, int]:
    """A moment strictly between two neighbouring entries among `entries[start:stop]` (newest first), and
    the ids of those two."""
    window = entries[start:stop]
    for newer, older in itertools.pairwise(window):
        late, early = moment(newer["created_at"]), moment(older["created_at"])
        if (late - early).total_seconds() >= 0.002:
            return early + (late - early) / 2, newer["id"], older["id"]
    raise AssertionError("no two neighbouring entries a few milliseconds apart")


async def test_paging_while_events_arrive_neither_skips_nor_repeats(hub: Hub, nats_url: str) -> None:
    """Pages of 5 over 25 entries while new events arrive between pages, and two late arrivals that
    happened earlier (one before the page boundary, one after): every entry once, newest first."""
    status, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": "paging-while-arriving"})
    assert status == 200
    cid = str(body["collection"]["id"])
    await toggle(hub, cid, 24)
    await wait_for_history(hub, cid, 25)
    before = await everything(hub, cid)

    pages: list[list[int]] = []
    token: str | None = None
    late_ids: dict[str, tuple[int, int]] = {}
    while True:
        query = f"pageSize={PAGE}" + (f"&paginationToken={token}" if token else "")
        status, page = await json_of(hub, "GET", f"/v1/collections/{cid}/history?{query}")
        assert status == 200
        pages.append([entry["id"] for entry in page["data"]])
        token = page.get("nextPaginationToken")
        if token is None:
            break
        if len(pages) == 1:
            # Between the first and second page: newer events, one that happened among the entries
            # already shown, and one among those still to come.
            shown_late = between(before, 0, PAGE)
            coming_late = between(before, PAGE, len(before))
            await toggle(hub, cid, 2)
            await publish_late(nats_url, cid, shown_late[0])
            await publish_late(nats_url, cid, coming_late[0])
            late_ids = {"shown": shown_late[1:], "coming": coming_late[1:]}
            await wait_for_history(hub, cid, len(before) + 4)
        elif len(pages) == 3:
            await toggle(hub, cid, 1)
            await wait_for_history(hub, cid, len(before) + 5)

    listed = [entry_id for page in pages for entry_id in page]
    assert listed == sorted(listed, reverse=True), "newest first across pages"
    assert len(listed) == len(set(listed)), "no entry twice"
    after = await everything(hub, cid)
    ids_after = [entry["id"] for entry in after]
    assert ids_after == sorted(ids_after, reverse=True)
    added = [entry_id for entry_id in ids_after if entry_id not in {e["id"] for e in before}]
    assert len(added) == 5
    # Every entry there when paging began, plus the late arrival below the first page's boundary.
    [coming] = [entry_id for entry_id in added if late_ids["coming"][1] < entry_id < late_ids["coming"][0]]
    assert set(listed) == {entry["id"] for entry in before} | {coming}
    # The late arrival among the entries already shown sits among them, so the pager does not see it.
    [shown_late] = [entry_id for entry_id in added if late_ids["shown"][1] < entry_id < late_ids["shown"][0]]
    assert shown_late not in listed
