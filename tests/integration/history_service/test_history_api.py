"""The history routes of all three dialects, over events published to the real stream."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from history_service.schemas import PAGE_SIZE_V2
from shared.clock import now, stamp
from tests.integration.history_service.conftest import (
    ADMIN,
    OWNER,
    STRANGER,
    HistoryClient,
    Peers,
    Publish,
    as_caller,
    history_db,
    wait_recorded,
)


def new_id() -> str:
    """A collection id no other test uses."""
    return uuid.uuid4().hex[:20]


async def create_collection(
    publish: Publish, collection_id: str, *, name: str = "Sample Collection", project_id: str = "p1"
) -> str:
    """Publish the collection's created event (owner 42); return its event id."""
    created = await publish(
        "catalog.collection.created",
        actor=42,
        ids={"collection_id": collection_id, "project_id": project_id},
        data={"name": name, "owner_id": 42},
    )
    return created.id


async def visibility_events(publish: Publish, collection_id: str, count: int) -> list[str]:
    """`count` made-public events on the collection; their event ids in publishing order."""
    ids = []
    for _ in range(count):
        event = await publish(
            "access.collection.made_public",
            actor=42,
            ids={"collection_id": collection_id},
            data={"is_public": True},
        )
        ids.append(event.id)
    return ids


async def get_json(client: HistoryClient, path: str, principal: Any = OWNER) -> tuple[int, Any]:
    """Status and JSON body of a GET as the caller."""
    response = await client.get(path, headers=as_caller(principal))
    return response.status, await response.json()


async def test_v2_history_is_shaped_as_the_document(history: HistoryClient, publish: Publish) -> None:
    """Dialect B answers in the document's shape: newest first, User then Collection, null next_cursor."""
    cid = new_id()
    created_id = await create_collection(publish, cid)
    user = await publish(
        "access.user.created",
        actor=1,
        ids={"user_id": 4242},
        data={"email": "u4242@example.com", "role": "user", "first_name": "Ada"},
    )
    linked = await publish("access.collection.user_linked", ids={"collection_id": cid, "user_id": 4242})
    records = await wait_recorded(history_db(history), [created_id, user.id, linked.id])
    by_id = {record["_id"]: record for record in records}

    status, body = await get_json(history, f"/api/v2/collections/{cid}/history/0")

    assert status == 200
    [newest, oldest] = body["history"]["results"]
    collection_target = {
        "target_type": "Collection",
        "target": {
            "id": newest["event_targets"][1]["target"]["id"],
            "elasticsearch_id": cid,
            "title": "Sample Collection",
        },
    }
    assert isinstance(collection_target["target"]["id"], int)
    assert body == {
        "history": {
            "results": [
                {
                    "id": by_id[linked.id]["seq"],
                    "user_id": 0,
                    "event_type": "USER_LINKED",
                    "created_at": stamp(linked.occurred_at),
                    "updated_at": stamp(linked.occurred_at),
                    "event_targets": [
                        {
                            "target_type": "User",
                            "target": {"id": 4242, "first_name": "Ada", "last_name": None},
                        },
                        collection_target,
                    ],
                },
                {
                    "id": by_id[created_id]["seq"],
                    "user_id": 42,
                    "event_type": "COLLECTION_CREATED",
                    "created_at": oldest["created_at"],
                    "updated_at": oldest["created_at"],
                    "event_targets": [collection_target],
                },
            ],
            "next_cursor": None,
        }
    }
    assert newest["id"] > oldest["id"]


async def test_v2_pages_twenty_newest_first_until_next_cursor_is_null(
    history: HistoryClient, publish: Publish
) -> None:
    """45 events come back as pages of 20, 20 and 5, strictly newest first, each exactly once."""
    cid = new_id()
    event_ids = [await create_collection(publish, cid), *await visibility_events(publish, cid, 44)]
    records = await wait_recorded(history_db(history), event_ids)

    seen: list[int] = []
    sizes = []
    cursor = "0"
    while cursor is not None:
        status, body = await get_json(history, f"/api/v2/collections/{cid}/history/{cursor}")
        assert status == 200
        results = body["history"]["results"]
        sizes.append(len(results))
        seen.extend(result["id"] for result in results)
        cursor = body["history"]["next_cursor"]

    assert sizes == [PAGE_SIZE_V2, PAGE_SIZE_V2, 5]
    assert seen == sorted((record["seq"] for record in records), reverse=True)


async def test_v2_invalid_and_foreign_cursors_are_422(history: HistoryClient, publish: Publish) -> None:
    """A made-up cursor, and a cursor taken from another collection, get the document's 422 message."""
    mine, other = new_id(), new_id()
    event_ids = [await create_collection(publish, mine), await create_collection(publish, other)]
    event_ids += await visibility_events(publish, other, PAGE_SIZE_V2)
    await wait_recorded(history_db(history), event_ids)
    _, first_page = await get_json(history, f"/api/v2/collections/{other}/history/0")
    foreign = first_page["history"]["next_cursor"]
    assert foreign is not None

    status, body = await get_json(history, f"/api/v2/collections/{mine}/history/test")
    assert (status, body) == (422, {"error": "Invalid parameter 'cursor' value \"test\": Invalid cursor"})
    status, body = await get_json(history, f"/api/v2/collections/{mine}/history/{foreign}")
    assert (status, body) == (
        422,
        {"error": f"Invalid parameter 'cursor' value \"{foreign}\": Invalid cursor"},
    )
    status, _ = await get_json(history, f"/api/v2/collections/{other}/history/{foreign}")
    assert status == 200


async def test_unknown_collection_is_404_in_each_dialect(history: HistoryClient, peers: Peers) -> None:
    """A collection neither the projection nor catalog knows is each dialect's not-found."""
    status, body = await get_json(history, "/api/v2/collections/-1/history/0")
    assert (status, body) == (404, {"error": "collection not found"})
    status, body = await get_json(history, "/namespaces/ns/projects/proj/collections/nope/history")
    assert (status, body) == (
        404,
        {"statusCode": 404, "message": "Collection not found", "error": "Not Found"},
    )
    status, body = await get_json(history, "/v1/collections/-1/history")
    assert (status, body) == (404, {"error": "collection not found"})
    assert "GET /internal/collections/-1" in peers.calls


async def test_history_needs_read_permission(history: HistoryClient, peers: Peers, publish: Publish) -> None:
    """A caller access_service does not let read gets 404; once allowed, 200; admins always see it."""
    cid = new_id()
    await wait_recorded(history_db(history), [await create_collection(publish, cid)])
    path = f"/api/v2/collections/{cid}/history/0"

    assert await get_json(history, path, STRANGER) == (404, {"error": "collection not found"})
    assert (await get_json(history, path, ADMIN))[0] == 200
    peers.readers.add((STRANGER.user_id, cid))
    status, body = await get_json(history, path, STRANGER)
    assert status == 200
    assert [result["event_type"] for result in body["history"]["results"]] == ["COLLECTION_CREATED"]
    assert "POST /internal/permissions" in peers.calls


async def test_deleted_collection_history_is_404(history: HistoryClient, publish: Publish) -> None:
    """Once a collection's deleted event is recorded, its history is not found, even for its owner."""
    cid = new_id()
    deleted = await publish(
        "catalog.collection.deleted",
        actor=42,
        ids={"collection_id": cid, "project_id": "p1"},
        data={"name": "x"},
    )
    await wait_recorded(history_db(history), [await create_collection(publish, cid), deleted.id])
    assert await get_json(history, f"/api/v2/collections/{cid}/history/0") == (
        404,
        {"error": "collection not found"},
    )


async def test_collection_not_yet_projected_is_looked_up_in_catalog(
    history: HistoryClient, peers: Peers, publish: Publish
) -> None:
    """Before its created event is recorded, a collection is authorized and titled from catalog's answer."""
    cid = new_id()
    peers.add_collection(cid, owner_id=OWNER.user_id, name="From Catalog")
    [event_id] = await visibility_events(publish, cid, 1)
    await wait_recorded(history_db(history), [event_id])

    status, body = await get_json(history, f"/api/v2/collections/{cid}/history/0")

    assert status == 200
    [entry] = body["history"]["results"]
    assert entry["event_type"] == "COLLECTION_MADE_PUBLIC"
    assert entry["event_targets"][0]["target"]["title"] == "From Catalog"
    assert f"GET /internal/collections/{cid}" in peers.calls


async def test_collection_target_shows_the_current_title(history: HistoryClient, publish: Publish) -> None:
    """Every entry shows the collection as it is now: a rename changes the title of earlier entries too."""
    cid = new_id()
    created_id = await create_collection(publish, cid)
    updated = await publish(
        "catalog.collection.updated",
        actor=42,
        ids={"collection_id": cid, "project_id": "p1"},
        data={"name": "Renamed", "changes": {"name": "Renamed"}},
    )
    event_ids = [created_id, updated.id, *await visibility_events(publish, cid, 1)]
    await wait_recorded(history_db(history), event_ids)

    _, body = await get_json(history, f"/api/v2/collections/{cid}/history/0")

    shown = [(r["event_type"], r["event_targets"][-1]["target"]["title"]) for r in body["history"]["results"]]
    assert shown == [
        ("COLLECTION_MADE_PUBLIC", "Renamed"),
        ("COLLECTION_UPDATED", "Renamed"),
        ("COLLECTION_CREATED", "Renamed"),
    ]


async def test_late_older_event_does_not_bring_an_old_name_back(
    history: HistoryClient, publish: Publish
) -> None:
    """A created event recorded after a newer rename keeps the newer name, and lists below the rename."""
    cid = new_id()
    updated = await publish(
        "catalog.collection.updated",
        actor=42,
        ids={"collection_id": cid, "project_id": "p1"},
        data={"name": "Newer", "changes": {"name": "Newer"}},
    )
    await wait_recorded(history_db(history), [updated.id])
    created = await publish(
        "catalog.collection.created",
        actor=42,
        occurred_at=now() - timedelta(seconds=5),
        ids={"collection_id": cid, "project_id": "p1"},
        data={"name": "Older", "owner_id": 42},
    )
    await wait_recorded(history_db(history), [created.id])

    _, body = await get_json(history, f"/api/v2/collections/{cid}/history/0")

    shown = [(r["event_type"], r["event_targets"][-1]["target"]["title"]) for r in body["history"]["results"]]
    assert shown == [("COLLECTION_UPDATED", "Newer"), ("COLLECTION_CREATED", "Newer")]


async def test_dialect_a_numbered_pages_with_totals(history: HistoryClient, publish: Publish) -> None:
    """Dialect A finds the collection by slugs and name and pages with page/pageSize/total/totalPages."""
    cid, project_id = new_id(), f"p_{new_id()}"
    project = await publish(
        "catalog.project.created",
        actor=42,
        ids={"project_id": project_id, "namespace": "acme", "project": "cams"},
        data={"name": "Cams"},
    )
    event_ids = [project.id, await create_collection(publish, cid, name="front-clips", project_id=project_id)]
    event_ids += await visibility_events(publish, cid, 4)
    records = await wait_recorded(history_db(history), event_ids)
    newest_first = sorted((r["seq"] for r in records if r.get("collection_id") == cid), reverse=True)
    path = "/namespaces/acme/projects/cams/collections/front-clips/history"

    status, body = await get_json(history, f"{path}?page=2&pageSize=2")

    assert status == 200
    assert {key: body[key] for key in ("page", "pageSize", "total", "totalPages")} == {
        "page": 2,
        "pageSize": 2,
        "total": 5,
        "totalPages": 3,
    }
    assert [entry["id"] for entry in body["history"]] == newest_first[2:4]
    status, body = await get_json(history, path)
    assert (status, body["pageSize"], len(body["history"])) == (200, 50, 5)
    status, body = await get_json(history, f"{path}?pageSize=201")
    assert status == 400
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"


async def test_dialect_a_falls_back_to_catalog_by_name(
    history: HistoryClient, peers: Peers, publish: Publish
) -> None:
    """A dialect A collection the projection cannot resolve by name is looked up in catalog."""
    cid = new_id()
    peers.add_collection(cid, owner_id=OWNER.user_id)
    peers.by_name[("acme", "unseen", "clips")] = cid
    await wait_recorded(history_db(history), await visibility_events(publish, cid, 1))

    status, body = await get_json(history, "/namespaces/acme/projects/unseen/collections/clips/history")

    assert status == 200
    assert body["total"] == 1
    assert "GET /internal/collections/by-name/acme/unseen/clips" in peers.calls


async def test_dialect_a_never_shows_a_renamed_collections_history_under_its_old_name(
    history: HistoryClient, peers: Peers, publish: Publish
) -> None:
    """Collection X is renamed foo -> bar and a new Y takes the name foo, before history has projected
    the rename: `.../collections/foo/history` shows Y's history, never X's (catalog's name is the truth)."""
    old, new = new_id(), new_id()
    peers.add_collection(old, owner_id=OWNER.user_id, name="foo")
    peers.by_name[("acme", "reuse", "foo")] = old
    await wait_recorded(
        history_db(history),
        [await create_collection(publish, old, name="foo"), *await visibility_events(publish, old, 3)],
    )
    path = "/namespaces/acme/projects/reuse/collections/foo/history"
    status, body = await get_json(history, path)
    assert (status, body["total"]) == (200, 4)  # X's, while it is foo
    peers.add_collection(old, owner_id=OWNER.user_id, name="bar")  # renamed in catalog, not yet projected
    peers.add_collection(new, owner_id=OWNER.user_id, name="foo")
    peers.by_name[("acme", "reuse", "foo")] = new
    await wait_recorded(history_db(history), [await create_collection(publish, new, name="foo")])
    status, body = await get_json(history, path)
    assert (status, body["total"]) == (200, 1)


async def test_dialect_c_pages_with_pagination_tokens(history: HistoryClient, publish: Publish) -> None:
    """Dialect C follows nextPaginationToken until it is absent; a bad token or page size is a 400."""
    cid = new_id()
    event_ids = [await create_collection(publish, cid), *await visibility_events(publish, cid, 4)]
    records = await wait_recorded(history_db(history), event_ids)

    seen: list[int] = []
    token: str | None = None
    pages = 0
    while True:
        query = "pageSize=2" + (f"&paginationToken={token}" if token else "")
        status, body = await get_json(history, f"/v1/collections/{cid}/history?{query}")
        assert status == 200
        seen.extend(entry["id"] for entry in body["data"])
        pages += 1
        token = body.get("nextPaginationToken")
        if token is None:
            assert set(body) == {"data"}
            break

    assert pages == 3
    assert seen == sorted((record["seq"] for record in records), reverse=True)
    status, body = await get_json(history, f"/v1/collections/{cid}/history?paginationToken=nope")
    assert (status, body) == (
        400,
        {"error": "Invalid parameter 'paginationToken' value \"nope\": Invalid pagination token"},
    )
    assert (await get_json(history, f"/v1/collections/{cid}/history?pageSize=101"))[0] == 400


async def test_history_needs_the_gateway_principal(history: HistoryClient) -> None:
    """Without the principal the gateway forwards, history answers 401."""
    response = await history.get(
        "/api/v2/collections/x/history/0", headers=as_caller(OWNER) | {"X-Hub-Principal": ""}
    )
    assert response.status == 401


async def api_commands(client: HistoryClient) -> float:
    """MongoDB commands the app has sent on behalf of requests (the consumer's are counted apart)."""
    text = await (await client.get("/metrics")).text()
    pattern = re.compile(r'^mongo_commands_total\{[^}]*client="api"[^}]*\} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


async def test_mongo_commands_per_history_page(history: HistoryClient, publish: Publish) -> None:
    """Steady state: a first page (head included) is one command, a later page two; A adds its count."""
    cid, project_id = new_id(), f"p_{new_id()}"
    project = await publish(
        "catalog.project.created",
        actor=42,
        ids={"project_id": project_id, "namespace": "rt", "project": "trips"},
        data={"name": "Trips"},
    )
    event_ids = [project.id, await create_collection(publish, cid, name="clips", project_id=project_id)]
    event_ids += await visibility_events(publish, cid, 25)
    await wait_recorded(history_db(history), event_ids)
    _, first = await get_json(history, f"/api/v2/collections/{cid}/history/0")
    paths = {
        "B first page": (f"/api/v2/collections/{cid}/history/0", 1),
        "B next page": (f"/api/v2/collections/{cid}/history/{first['history']['next_cursor']}", 2),
        "C": (f"/v1/collections/{cid}/history?pageSize=5", 1),
        "A first page": ("/namespaces/rt/projects/trips/collections/clips/history?pageSize=5", 2),
    }
    spent = {}
    for label, (path, _) in paths.items():
        assert (await get_json(history, path))[0] == 200  # warm the by-name cache
        before = await api_commands(history)
        assert (await get_json(history, path))[0] == 200
        spent[label] = await api_commands(history) - before
    assert spent == {label: float(expected) for label, (_, expected) in paths.items()}
