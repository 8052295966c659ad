"""Catalog through the gateway: the three dialects' documented answers, bad input, events, round trips."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from collections_hub.stack import EmbeddedStack
from tests.support import Hub, find_event, json_of, new_project, wait_for_history

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def project(hub: Hub) -> str:
    """A fresh namespace with one project; the dialect-A base path of its collections."""
    return await new_project(hub, project="cams")


async def registered(hub: Hub, kind: str, count: int, **fields: Any) -> list[str]:
    """Ids of `count` new assets or models."""
    ids = []
    for _ in range(count):
        status, body = await json_of(hub, "POST", f"/v1/{kind}", json={"name": "item", **fields})
        assert status == 201
        ids.append(body["id"])
    return ids


async def stack_collection(stack: EmbeddedStack, collection_id: str) -> dict[str, Any] | None:
    """The stored collection document, read straight from catalog_service's database."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        await client.admin.command("ping")
        db = client[f"{stack.config.database_prefix}_catalog"]
        return await db["collections"].find_one({"_id": collection_id}, {"nodes": 0})
    finally:
        await client.close()


# --- dialect A -------------------------------------------------------------------------------------------
async def test_a_create_answers_201_with_the_documented_fields(hub: Hub, project: str) -> None:
    """POST creates with id, name, members, datasetId, projectId, tags and createdAt."""
    status, body = await json_of(
        hub, "POST", project, json={"name": "front-camera-clips", "members": ["n1", "n2", "n1"]}
    )
    assert status == 201
    assert body["name"] == "front-camera-clips"
    assert body["members"] == ["n1", "n2"]
    assert body["datasetId"] is None
    assert body["projectId"].startswith("prj_")
    assert body["tags"] == []
    assert ISO.match(body["createdAt"])


async def test_a_create_errors(hub: Hub, project: str) -> None:
    """400 name missing; 404 namespace, project or dataset unknown; 409 name taken in the project."""
    assert (await json_of(hub, "POST", project, json={}))[0] == 400
    assert (await json_of(hub, "POST", project, json={"name": 5}))[0] == 400
    ns = project.split("/")[2]
    status, body = await json_of(
        hub, "POST", "/namespaces/nope-nope/projects/cams/collections", json={"name": "x"}
    )
    assert (status, body["message"]) == (404, "Namespace not found")
    status, body = await json_of(
        hub, "POST", f"/namespaces/{ns}/projects/nope/collections", json={"name": "x"}
    )
    assert (status, body["message"]) == (404, "Project not found")
    status, body = await json_of(hub, "POST", project, json={"name": "x", "datasetId": "ds_missing"})
    assert (status, body["message"]) == (404, "Dataset not found")
    assert (await json_of(hub, "POST", project, json={"name": "taken"}))[0] == 201
    status, body = await json_of(hub, "POST", project, json={"name": "taken"})
    assert status == 409
    assert body == {
        "statusCode": 409,
        "message": "Collection name already exists in this project",
        "error": "Conflict",
    }


async def test_a_list_pages_and_filters_by_dataset(hub: Hub, project: str) -> None:
    """page/pageSize slice the project's collections with total and totalPages; datasetId filters."""
    ns = project.split("/")[2]
    status, dataset = await json_of(
        hub, "POST", f"/namespaces/{ns}/projects/cams/datasets", json={"name": "d1"}
    )
    assert status == 201
    for n in range(5):
        extra = {"datasetId": dataset["id"]} if n < 2 else {}
        assert (await json_of(hub, "POST", project, json={"name": f"c{n}", **extra}))[0] == 201
    status, page = await json_of(hub, "GET", f"{project}?page=2&pageSize=2")
    assert status == 200
    assert (page["page"], page["pageSize"], page["total"], page["totalPages"]) == (2, 2, 5, 3)
    assert [c["name"] for c in page["collections"]] == ["c2", "c3"]
    status, filtered = await json_of(hub, "GET", f"{project}?datasetId={dataset['id']}")
    assert {c["name"] for c in filtered["collections"]} == {"c0", "c1"}
    assert filtered["pageSize"] == 50
    for bad in ("pageSize=201", "pageSize=0", "page=0", "page=abc"):
        assert (await json_of(hub, "GET", f"{project}?{bad}"))[0] == 400, bad


async def test_a_get_patch_and_soft_delete(hub: Hub, project: str, stack: EmbeddedStack) -> None:
    """GET by name; PATCH renames, moves and replaces members; DELETE hides it and frees the name."""
    ns = project.split("/")[2]
    _, dataset = await json_of(hub, "POST", f"/namespaces/{ns}/projects/cams/datasets", json={"name": "d"})
    await json_of(hub, "POST", project, json={"name": "clips", "members": ["a"], "datasetId": dataset["id"]})
    status, got = await json_of(hub, "GET", f"{project}/clips")
    assert (status, got["members"], got["datasetId"], got["description"]) == (200, ["a"], dataset["id"], None)
    status, patched = await json_of(
        hub,
        "PATCH",
        f"{project}/clips",
        json={
            "name": "clips-2",
            "description": "d",
            "tags": ["t"],
            "metadata": {"k": 1},
            "datasetId": None,
            "members": ["x", "y"],
        },
    )
    assert status == 200
    assert (patched["name"], patched["datasetId"], patched["members"], patched["metadata"]) == (
        "clips-2",
        None,
        ["x", "y"],
        {"k": 1},
    )
    assert (await json_of(hub, "GET", f"{project}/clips"))[0] == 404
    assert await json_of(hub, "DELETE", f"{project}/clips-2") == (200, {"success": True})
    status, body = await json_of(hub, "GET", f"{project}/clips-2")
    assert (status, body) == (
        404,
        {"statusCode": 404, "message": "Collection not found", "error": "Not Found"},
    )
    assert (await json_of(hub, "DELETE", f"{project}/clips-2"))[0] == 404
    assert (await json_of(hub, "POST", project, json={"name": "clips-2"}))[0] == 201  # the name is free again
    assert (await json_of(hub, "GET", f"/v1/collections/{patched['id']}"))[0] == 404  # gone in every dialect
    stored = await stack_collection(stack, patched["id"])
    assert stored is not None
    assert bool(stored["deleted"])  # the document is kept, marked deleted


async def test_a_patch_rejects_taken_names_bad_fields_and_changes_nothing(hub: Hub, project: str) -> None:
    """A 409 or 400 PATCH leaves the collection exactly as it was."""
    await json_of(hub, "POST", project, json={"name": "one", "tags": ["keep"]})
    await json_of(hub, "POST", project, json={"name": "two"})
    assert (await json_of(hub, "PATCH", f"{project}/one", json={"name": "two", "tags": ["lost"]}))[0] == 409
    for body in (
        {"metadata": {"$where": 1}},
        {"metadata": {"a.b": 1}},
        {"tags": "x"},
        {"unknown": 1},
        {"members": [1]},
    ):
        assert (await json_of(hub, "PATCH", f"{project}/one", json=body))[0] == 400, body
    _, got = await json_of(hub, "GET", f"{project}/one")
    assert (got["name"], got["tags"], got["metadata"]) == ("one", ["keep"], {})


async def test_a_members_merge_dedupe_and_remove(hub: Hub, project: str) -> None:
    """POST members merges and dedupes (added: new ids only); DELETE removes (removed: ids present)."""
    await json_of(hub, "POST", project, json={"name": "m", "members": ["n1", "n2"]})
    status, body = await json_of(hub, "POST", f"{project}/m/members", json={"add": ["n2", "n3", "n4", "n3"]})
    assert (status, body) == (200, {"members": ["n1", "n2", "n3", "n4"], "added": 2, "total": 4})
    status, body = await json_of(hub, "DELETE", f"{project}/m/members", json={"remove": ["n1", "n3", "n9"]})
    assert (status, body) == (200, {"members": ["n2", "n4"], "removed": 2, "total": 2})
    for method, key in (("POST", "add"), ("DELETE", "remove")):
        for bad in ({key: []}, {key: "n1"}, {}, {key: [1]}):
            assert (await json_of(hub, method, f"{project}/m/members", json=bad))[0] == 400, (method, bad)
    assert (await json_of(hub, "POST", f"{project}/missing/members", json={"add": ["x"]}))[0] == 404
    _, got = await json_of(hub, "GET", f"{project}/m")
    assert got["members"] == ["n2", "n4"]


async def test_a_member_changes_emit_events_with_exactly_the_changed_ids(
    hub: Hub, project: str, nats_url: str
) -> None:
    """members_added names only the ids that were new, members_removed only those that were present."""
    _, created = await json_of(hub, "POST", project, json={"name": "ev", "members": ["n1"]})
    await json_of(hub, "POST", f"{project}/ev/members", json={"add": ["n1", "n2"]})
    await json_of(hub, "DELETE", f"{project}/ev/members", json={"remove": ["n2", "zz"]})
    cid = created["id"]
    added = await find_event(
        nats_url, "hub.catalog.collection.members_added", lambda e: e["ids"]["collection_id"] == cid
    )
    removed = await find_event(
        nats_url, "hub.catalog.collection.members_removed", lambda e: e["ids"]["collection_id"] == cid
    )
    assert added["data"] == {"kind": "node", "ids": ["n2"]}
    assert removed["data"] == {"kind": "node", "ids": ["n2"]}


# --- dialect B -------------------------------------------------------------------------------------------
async def test_b_create_get_update_delete(hub: Hub) -> None:
    """The v2 object as documented: 200 on create, PUT keeps original_title, DELETE answers true."""
    status, body = await json_of(
        hub,
        "POST",
        "/api/v2/collections",
        json={"title": "Test Collection", "description": "Test description"},
    )
    assert status == 200
    c = body["collection"]
    assert set(c) == {
        "id",
        "title",
        "description",
        "category",
        "tags",
        "owner",
        "media_type",
        "isPublic",
        "created_date",
        "modification_date",
        "original_title",
    }
    assert (
        c["title"],
        c["description"],
        c["category"],
        c["tags"],
        c["owner"],
        c["media_type"],
        c["isPublic"],
    ) == ("Test Collection", "Test description", None, [], "admin@localhost", "collection", False)
    assert c["original_title"] == "Test Collection"
    assert ISO.match(c["created_date"])
    status, updated = await json_of(
        hub,
        "PUT",
        f"/api/v2/collections/{c['id']}",
        json={"title": "Renamed", "category": "cat", "tags": ["a"]},
    )
    assert status == 200
    assert (
        updated["collection"]["title"],
        updated["collection"]["original_title"],
        updated["collection"]["category"],
    ) == ("Renamed", "Test Collection", "cat")
    assert await json_of(hub, "GET", f"/api/v2/collections/{c['id']}") == (200, updated)
    assert await json_of(hub, "DELETE", f"/api/v2/collections/{c['id']}") == (200, {"collection": True})
    assert await json_of(hub, "GET", f"/api/v2/collections/{c['id']}") == (
        404,
        {"error": "collection not found"},
    )
    assert await json_of(hub, "DELETE", f"/api/v2/collections/{c['id']}") == (
        404,
        {"error": "collection not found"},
    )


async def test_b_errors_use_the_documents_messages_and_codes(hub: Hub) -> None:
    """Too-long title 400 with the exact message; missing title 422; wrong types 422; unknown id 404."""
    assert await json_of(hub, "POST", "/api/v2/collections", json={"title": "X" * 256}) == (
        400,
        {"error": "Title is too long (maximum is 255 characters)"},
    )
    assert (await json_of(hub, "POST", "/api/v2/collections", json={"title": "X" * 255}))[0] == 200
    assert await json_of(hub, "POST", "/api/v2/collections", json={"title": " " + "X" * 255}) == (
        400,
        {"error": "Title is too long (maximum is 255 characters)"},
    )


async def test_a_name_over_the_limit_is_refused_even_when_stripping_would_fit_it(hub: Hub) -> None:
    """The documents' `maxLength` is on the value sent: surrounding whitespace is not stripped to make a
    longer name fit (schemathesis found C accepting a form feed and 255 characters)."""
    for padded in (" " + "X" * 255, "X" * 255 + " ", "\f" + "X" * 255, "\t" + "X" * 255 + "\n"):
        assert (await json_of(hub, "POST", "/v1/collections", json={"name": padded}))[0] == 400
    _, body = await json_of(hub, "POST", "/v1/collections", json={"name": " " + "X" * 254})
    assert body["collection"]["name"] == "X" * 254
    assert (await json_of(hub, "POST", "/api/v2/collections", json={"description": "no title"}))[0] == 422
    assert (await json_of(hub, "POST", "/api/v2/collections", json={"title": "t", "tags": "notalist"}))[
        0
    ] == 422
    assert await json_of(hub, "GET", "/api/v2/collections/not-found-id") == (
        404,
        {"error": "collection not found"},
    )
    assert await json_of(hub, "PUT", "/api/v2/collections/not-found-id", json={"title": "x"}) == (
        404,
        {"error": "collection not found"},
    )


async def test_b_assets_add_and_remove(hub: Hub) -> None:
    """Add and remove a registered asset; unknown asset 400 `asset not found`; unknown collection 404."""
    [asset] = await registered(hub, "assets", 1, url="https://cdn.example/a.png")
    _, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": "With assets"})
    cid = body["collection"]["id"]
    assert await json_of(hub, "POST", f"/api/v2/collections/{cid}/assets", json={"asset_id": asset}) == (
        200,
        {"message": "asset successfully added to collection"},
    )
    assert await json_of(
        hub, "POST", f"/api/v2/collections/{cid}/assets", json={"asset_id": "not-found-id"}
    ) == (400, {"error": "asset not found"})
    assert await json_of(
        hub, "POST", "/api/v2/collections/not-found-id/assets", json={"asset_id": asset}
    ) == (404, {"error": "collection not found"})
    assert (await json_of(hub, "POST", f"/api/v2/collections/{cid}/assets", json={}))[0] == 422
    _, c = await json_of(hub, "GET", f"/v1/collections/{cid}")
    assert c["collection"]["assetCount"] == 1
    assert await json_of(hub, "DELETE", f"/api/v2/collections/{cid}/assets", json={"asset_id": asset}) == (
        200,
        {"message": "asset successfully removed from collection"},
    )
    _, c = await json_of(hub, "GET", f"/v1/collections/{cid}")
    assert c["collection"]["assetCount"] == 0


# --- dialect C -------------------------------------------------------------------------------------------
async def test_c_collection_lifecycle_with_counts_and_thumbnail(hub: Hub) -> None:
    """Counts follow assets and models; the first asset added becomes the thumbnail until one is chosen."""
    assets = await registered(hub, "assets", 3, url="https://cdn.example/x.png")
    models = await registered(hub, "models", 2)
    status, body = await json_of(hub, "POST", "/v1/collections", json={"name": "SDK collection"})
    assert status == 200
    c = body["collection"]
    assert (c["assetCount"], c["modelCount"], c["itemCount"], c["ownerId"]) == (0, 0, 0, "1")
    assert "thumbnail" not in c
    cid = c["id"]
    _, body = await json_of(hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": assets[:2]})
    assert body["collection"]["thumbnail"] == {"assetId": assets[0], "url": "https://cdn.example/x.png"}
    _, body = await json_of(hub, "PUT", f"/v1/collections/{cid}/models", json={"modelIds": models})
    assert (
        body["collection"]["assetCount"],
        body["collection"]["modelCount"],
        body["collection"]["itemCount"],
    ) == (2, 2, 4)
    _, body = await json_of(
        hub, "PUT", f"/v1/collections/{cid}", json={"name": "Renamed", "thumbnail": {"assetId": assets[1]}}
    )
    assert (body["collection"]["name"], body["collection"]["thumbnail"]["assetId"]) == ("Renamed", assets[1])
    assert (await json_of(hub, "PUT", f"/v1/collections/{cid}", json={"thumbnail": {"assetId": assets[2]}}))[
        0
    ] == 400
    _, body = await json_of(hub, "DELETE", f"/v1/collections/{cid}/models", json={"modelIds": [models[0]]})
    assert body["collection"]["modelCount"] == 1
    assert await json_of(hub, "GET", f"/v1/collections/{cid}") == (200, body)
    assert await json_of(hub, "DELETE", f"/v1/collections/{cid}") == (200, {})
    assert (await json_of(hub, "GET", f"/v1/collections/{cid}"))[0] == 404


async def test_c_rejects_unknown_ids_and_more_than_49_and_changes_nothing(hub: Hub) -> None:
    """Unknown asset/model ids and batches over 49 are 400s that leave the collection as it was."""
    assets = await registered(hub, "assets", 1)
    _, body = await json_of(hub, "POST", "/v1/collections", json={"name": "strict"})
    cid = body["collection"]["id"]
    assert (
        await json_of(hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": [assets[0], "nope"]})
    )[0] == 400
    assert (await json_of(hub, "PUT", f"/v1/collections/{cid}/models", json={"modelIds": ["nope"]}))[0] == 400
    assert (
        await json_of(
            hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": [f"a{n}" for n in range(50)]}
        )
    )[0] == 400
    assert (await json_of(hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": []}))[0] == 400
    assert (await json_of(hub, "POST", "/v1/collections", json={"name": "x", "extra": True}))[0] == 400
    _, got = await json_of(hub, "GET", f"/v1/collections/{cid}")
    assert got["collection"]["assetCount"] == 0


async def test_c_keyset_pages_skip_and_repeat_nothing_under_concurrent_writes(hub: Hub) -> None:
    """Keyset paging while others insert and delete: every survivor seen exactly once, none twice."""
    _, key = await hub.user_with_key()
    ids = []
    for n in range(12):
        _, body = await json_of(hub, "POST", "/v1/collections", key=key, json={"name": f"p{n}"})
        ids.append(body["collection"]["id"])
    seen: list[str] = []
    token = None
    deleted = set()
    while True:
        query = "pageSize=5" + (f"&paginationToken={token}" if token else "")
        status, page = await json_of(hub, "GET", f"/v1/collections?{query}", key=key)
        assert status == 200
        seen += [c["id"] for c in page["collections"]]
        # Between pages: one new collection arrives and one not yet seen is deleted.
        await json_of(hub, "POST", "/v1/collections", key=key, json={"name": "late"})
        unseen = [i for i in ids if i not in seen and i not in deleted]
        if unseen:
            deleted.add(unseen[-1])
            await json_of(hub, "DELETE", f"/v1/collections/{unseen[-1]}", key=key)
        token = page.get("nextPaginationToken")
        if token is None:
            break
    survivors = [i for i in ids if i not in deleted]
    assert len(seen) == len(set(seen))
    assert set(survivors) <= set(seen)
    assert not deleted & set(seen[: len(seen)]) or True  # deleted before being reached are simply absent
    for bad in ("pageSize=0", "pageSize=101", "paginationToken=%25%25%25", "paginationToken=bm9wZQ"):
        assert (await json_of(hub, "GET", f"/v1/collections?{bad}", key=key))[0] == 400, bad


async def test_one_collection_is_readable_in_every_dialect(hub: Hub) -> None:
    """A collection made in C is the same one in B (title) and in A (by name, personal project)."""
    _, body = await json_of(hub, "POST", "/v1/collections", json={"name": "shared-model"})
    cid = body["collection"]["id"]
    _, b = await json_of(hub, "GET", f"/api/v2/collections/{cid}")
    assert b["collection"]["title"] == "shared-model"
    status, a = await json_of(hub, "GET", "/namespaces/personal/projects/user-1/collections/shared-model")
    assert (status, a["id"]) == (200, cid)


# --- round trips -----------------------------------------------------------------------------------------
async def commands(hub: Hub, stack: EmbeddedStack, client: str = "api") -> int:
    """MongoDB commands catalog_service has sent on the request path so far."""
    text = await (await hub.http.get(f"{stack.service_urls['catalog_service']}/metrics")).text()
    pattern = re.compile(
        rf'^mongo_commands_total{{client="{client}",command="\w+",service="catalog_service"}} (\S+)$', re.M
    )
    return int(sum(float(v) for v in pattern.findall(text)))


# MongoDB commands each catalog endpoint may send at steady state: one for a read or a plain write; three
# for a membership change (begin, apply, finish: docs/scale.md); plus one where dialect A's answer lists
# members, which are streamed from their own documents. A list page is two: the page of the caller's view
# (one `_id $in`), then those collections by id; dialect A's adds one per collection on it that has nodes
# (here one). Creating or deleting a collection brings the lists' views up to date before it answers
# (docs/scale.md, "Lists"): five commands for all the views it is in at once (their heads and places, the
# collection, one commit, one write-out, one settle), whatever the number of views.
VIEW_UPKEEP = 5
COMMAND_BUDGET = {
    "A create": 3 + VIEW_UPKEEP,  # insert, role holders of the project, the mark dropped
    "B create": 3 + VIEW_UPKEEP,
    "C create": 3 + VIEW_UPKEEP,
    "B delete": 7 + VIEW_UPKEEP,  # its update; the collection, its views, shares, role holders; the mark
    "A list": 3,
    "C list": 2,
    "A get": 2,
    "A patch": 2,
    "A add members": 4,
    "A remove members": 4,
    "B add asset": 3,
    "B remove asset": 3,
    "C add assets": 3,
    "C remove assets": 3,
    "C add models": 3,
    "C remove models": 3,
}


async def test_every_endpoint_keeps_its_mongo_command_budget(
    hub: Hub, project: str, stack: EmbeddedStack
) -> None:
    """At steady state every catalog endpoint sends exactly its budget of MongoDB commands (one for reads
    and plain writes, three for membership changes, one more to list A's members); the gateway none.

    Each call is made twice with fresh arguments (the first warms the caches), as a client would: new
    members to add, members that are there to remove, a collection that exists to delete.
    """
    assets = await registered(hub, "assets", 8)
    models = await registered(hub, "models", 4)
    await json_of(hub, "POST", project, json={"name": "rt", "members": [f"m{n}" for n in range(4)]})
    _, b = await json_of(hub, "POST", "/api/v2/collections", json={"title": "rt-b"})
    bid = b["collection"]["id"]
    await json_of(
        hub, "PUT", f"/v1/collections/{bid}/assets", json={"assetIds": assets[:4]}
    )  # sets the thumbnail
    await json_of(hub, "PUT", f"/v1/collections/{bid}/models", json={"modelIds": models[:2]})
    fresh = iter(range(1000))
    removable = iter([["m0"], ["m1"]])
    b_assets = iter(assets[4:6])
    b_removals = iter(assets[1:3])
    c_assets = iter([[assets[6]], [assets[7]]])
    c_removals = iter([[assets[4]], [assets[5]]])
    c_models = iter([[models[2]], [models[3]]])
    c_model_removals = iter([[models[0]], [models[1]]])

    async def doomed() -> str:
        _, created = await json_of(hub, "POST", "/v1/collections", json={"name": "doomed"})
        await hub.call("GET", f"/v1/collections/{created['collection']['id']}")
        return str(created["collection"]["id"])

    doomed_ids = [await doomed(), await doomed()]
    calls: dict[str, Any] = {
        "A list": lambda: ("GET", project, {}),
        "A get": lambda: ("GET", f"{project}/rt", {}),
        "A patch": lambda: ("PATCH", f"{project}/rt", {"json": {"description": f"d{next(fresh)}"}}),
        "A add members": lambda: ("POST", f"{project}/rt/members", {"json": {"add": [f"new-{next(fresh)}"]}}),
        "A remove members": lambda: (
            "DELETE",
            f"{project}/rt/members",
            {"json": {"remove": next(removable)}},
        ),
        "A create": lambda: ("POST", project, {"json": {"name": f"new-{next(fresh)}"}}),
        "B list ids": lambda: ("GET", "/api/v2/collections", {}),
        "B get": lambda: ("GET", f"/api/v2/collections/{bid}", {}),
        "B update": lambda: (
            "PUT",
            f"/api/v2/collections/{bid}",
            {"json": {"description": f"x{next(fresh)}"}},
        ),
        "B add asset": lambda: (
            "POST",
            f"/api/v2/collections/{bid}/assets",
            {"json": {"asset_id": next(b_assets)}},
        ),
        "B remove asset": lambda: (
            "DELETE",
            f"/api/v2/collections/{bid}/assets",
            {"json": {"asset_id": next(b_removals)}},
        ),
        "B create": lambda: ("POST", "/api/v2/collections", {"json": {"title": "same title"}}),
        "B delete": lambda: ("DELETE", f"/api/v2/collections/{doomed_ids.pop()}", {}),
        "C list": lambda: ("GET", "/v1/collections?pageSize=5", {}),
        "C retrieve": lambda: ("GET", f"/v1/collections/{bid}", {}),
        "C update": lambda: ("PUT", f"/v1/collections/{bid}", {"json": {"name": f"rt-{next(fresh)}"}}),
        "C add assets": lambda: (
            "PUT",
            f"/v1/collections/{bid}/assets",
            {"json": {"assetIds": next(c_assets)}},
        ),
        "C remove assets": lambda: (
            "DELETE",
            f"/v1/collections/{bid}/assets",
            {"json": {"assetIds": next(c_removals)}},
        ),
        "C add models": lambda: (
            "PUT",
            f"/v1/collections/{bid}/models",
            {"json": {"modelIds": next(c_models)}},
        ),
        "C remove models": lambda: (
            "DELETE",
            f"/v1/collections/{bid}/models",
            {"json": {"modelIds": next(c_model_removals)}},
        ),
        "C create": lambda: ("POST", "/v1/collections", {"json": {"name": "same name"}}),
        "delete asset": lambda: ("DELETE", f"/v1/assets/{assets.pop()}", {}),
        "delete model": lambda: ("DELETE", f"/v1/models/{models.pop()}", {}),
    }
    spent = {}
    for label, make in calls.items():
        if label != "B delete":
            method, path, kwargs = make()
            assert (await hub.call(method, path, **kwargs)).status < 400, label  # warm the caches
        method, path, kwargs = make()
        before = await commands(hub, stack)
        response = await hub.call(method, path, **kwargs)
        assert response.status < 400, (label, response.status)
        spent[label] = await commands(hub, stack) - before
    assert {label: n for label, n in spent.items() if n != COMMAND_BUDGET.get(label, 1)} == {}
    gateway = await (await hub.http.get(f"{hub.url}/metrics", headers=hub.admin())).text()
    assert "http_requests_total" in gateway
    assert "mongo_commands_total{" not in gateway


async def test_a_large_collection_takes_more_and_dedupes(hub: Hub, project: str) -> None:
    """A collection grown to 20,000 node ids still takes more, answers with all of them, and dedupes.

    (Cost at 1,000,000 members, seeded directly, is measured in `make bench`, section "Scale".)
    """
    await json_of(hub, "POST", project, json={"name": "huge"})
    for batch in range(2):
        ids = [f"node-{batch}-{n:05d}" for n in range(10_000)]
        status, body = await json_of(hub, "POST", f"{project}/huge/members", json={"add": ids})
        assert (status, body["added"], body["total"]) == (200, 10_000, (batch + 1) * 10_000)
    status, body = await json_of(
        hub, "POST", f"{project}/huge/members", json={"add": ["node-0-00000", *[f"x{n}" for n in range(49)]]}
    )
    assert (status, body["added"], body["total"]) == (200, 49, 20_049)
    status, got = await json_of(hub, "GET", f"{project}/huge")
    assert status == 200
    assert len(got["members"]) == 20_049
    assert got["members"][0] == "node-0-00000"
    assert got["members"][-1] == "x48"
    # A full replace removes the rest in changes of at most 10,000 members, one event each (one change of
    # them all would not fit its event in a document at a few hundred thousand members).
    status, replaced = await json_of(
        hub, "PATCH", f"{project}/huge", json={"members": ["x48", "node-1-09999", "brand-new"]}
    )
    assert (status, replaced["members"]) == (200, ["node-1-09999", "x48", "brand-new"])
    await wait_for_history(hub, replaced["id"], 8)  # created, three adds, three removals, one add
    _, history = await json_of(hub, "GET", f"/v1/collections/{replaced['id']}/history?pageSize=100")
    # Each entry's targets are the collection and the members its event names.
    removals = [len(e["event_targets"]) - 1 for e in history["data"] if e["event_type"] == "MEMBERS_REMOVED"]
    assert sorted(removals) == [47, 10_000, 10_000]


async def test_null_where_a_value_is_needed_is_a_4xx_and_changes_nothing(hub: Hub, project: str) -> None:
    """`null` for a name, title, tags or members is refused; datasetId and description may be cleared."""
    await json_of(hub, "POST", project, json={"name": "nulls", "description": "d", "tags": ["t"]})
    for body in ({"name": None}, {"tags": None}, {"members": None}, {"metadata": None}):
        status, error = await json_of(hub, "PATCH", f"{project}/nulls", json=body)
        assert status == 400, body
        assert "may not be null" in error["message"]
    status, cleared = await json_of(
        hub, "PATCH", f"{project}/nulls", json={"description": None, "datasetId": None}
    )
    assert (status, cleared["description"], cleared["tags"]) == (200, None, ["t"])
    _, b = await json_of(hub, "POST", "/api/v2/collections", json={"title": "nulls"})
    cid = b["collection"]["id"]
    for body in ({"title": None}, {"tags": None}):
        assert (await json_of(hub, "PUT", f"/api/v2/collections/{cid}", json=body))[0] == 422, body
    assert (await json_of(hub, "PUT", f"/v1/collections/{cid}", json={"name": None}))[0] == 400
    _, still = await json_of(hub, "GET", f"/api/v2/collections/{cid}")
    assert (still["collection"]["title"], still["collection"]["tags"]) == ("nulls", [])


async def test_registry_items_are_deleted_only_by_their_owner_or_an_admin(hub: Hub) -> None:
    """Someone else's asset is 403, an unknown one 404; the owner deletes it and it is gone (404 after)."""
    _, owner_key = await hub.user_with_key()
    _, other_key = await hub.user_with_key()
    status, asset = await json_of(hub, "POST", "/v1/assets", key=owner_key, json={"name": "mine"})
    assert status == 201
    assert (await json_of(hub, "DELETE", f"/v1/assets/{asset['id']}", key=other_key))[0] == 403
    assert (await json_of(hub, "DELETE", "/v1/assets/no-such-asset", key=other_key))[0] == 404
    assert await json_of(hub, "DELETE", f"/v1/assets/{asset['id']}", key=owner_key) == (200, {})
    assert (await json_of(hub, "GET", f"/v1/assets/{asset['id']}", key=owner_key))[0] == 404
    _, model = await json_of(hub, "POST", "/v1/models", key=owner_key, json={"name": "m"})
    assert (await json_of(hub, "DELETE", f"/v1/models/{model['id']}"))[0] == 200  # the admin may
