"""The MongoDB behaviour access_service's repository relies on, pinned against the server tests use.

Beyond ../shared/MONGO_SUBSET.md: membership in (indexed) arrays of scalars, asked with `$in`/`$nin`
(on nx-27017 a plain equality on an indexed array field matches only scalars, and `$ne` on an array
matches documents that hold the value), and ids kept as values, never inside a field path.
"""

from __future__ import annotations

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document

Collection = AsyncCollection[Document]


@pytest.fixture
async def shares(mongo_db: AsyncDatabase[Document]) -> Collection:
    """Access-like documents with multikey indexes on their arrays, as the repository creates them."""
    collection = mongo_db["collection_access"]
    await collection.create_index("user_ids")
    await collection.create_index("group_ids")
    await collection.insert_many(
        [
            {"_id": "a", "user_ids": [1, 2], "group_ids": [5]},
            {"_id": "b", "user_ids": [], "group_ids": []},
            {"_id": "c", "user_ids": [22, 12], "group_ids": [6, 7]},
        ]
    )
    return collection


async def ids(collection: Collection, query: Document) -> list[str]:
    """Sorted ids of the matching documents."""
    return sorted(doc["_id"] for doc in await collection.find(query, {"_id": 1}).to_list())


async def test_in_finds_documents_whose_indexed_array_holds_the_value(shares: Collection) -> None:
    """`{field: {$in: [x]}}` matches exactly the documents whose array contains x (no prefix matches)."""
    assert await ids(shares, {"user_ids": {"$in": [2]}}) == ["a"]
    assert await ids(shares, {"user_ids": {"$in": [12]}}) == ["c"]
    assert await ids(shares, {"user_ids": {"$in": [3]}}) == []
    assert await ids(shares, {"group_ids": {"$in": [5, 7]}}) == ["a", "c"]


async def test_nin_finds_documents_whose_array_lacks_the_value(shares: Collection) -> None:
    """`{field: {$nin: [x]}}` matches the documents (including empty arrays) that do not hold x."""
    assert await ids(shares, {"user_ids": {"$nin": [2]}}) == ["b", "c"]


async def test_conditional_add_and_remove_apply_once(shares: Collection) -> None:
    """Add guarded by `$nin`, remove guarded by `$in`: the second of each matches nothing."""
    add = {"$addToSet": {"user_ids": {"$each": [3]}}, "$inc": {"outbox_count": 1}}
    assert (await shares.update_one({"_id": "a", "user_ids": {"$nin": [3]}}, add)).modified_count == 1
    assert (await shares.update_one({"_id": "a", "user_ids": {"$nin": [3]}}, add)).matched_count == 0
    remove = {"$pull": {"user_ids": {"$in": [3]}}, "$inc": {"outbox_count": 1}}
    assert (await shares.update_one({"_id": "a", "user_ids": {"$in": [3]}}, remove)).modified_count == 1
    assert (await shares.update_one({"_id": "a", "user_ids": {"$in": [3]}}, remove)).matched_count == 0
    doc = await shares.find_one({"_id": "a"})
    assert doc is not None
    assert (doc["user_ids"], doc["outbox_count"]) == ([1, 2], 2)
    assert await ids(shares, {"user_ids": {"$in": [3]}}) == []


async def test_add_to_one_array_and_pull_from_others_in_one_update(mongo_db: AsyncDatabase[Document]) -> None:
    """A role change moves a project id between role arrays in one update, guarded by `$nin`."""
    users = mongo_db["users"]
    fields = ["owner_of_projects", "editor_of_projects", "viewer_of_projects"]
    for field in fields:
        await users.create_index(field)
    await users.insert_one(
        {"_id": 1, "owner_of_projects": [], "editor_of_projects": [], "viewer_of_projects": ["p-1"]}
    )
    result = await users.update_one(
        {"_id": 1, "editor_of_projects": {"$nin": ["p-1"]}},
        {
            "$addToSet": {"editor_of_projects": {"$each": ["p-1"]}},
            "$pull": {"owner_of_projects": {"$in": ["p-1"]}, "viewer_of_projects": {"$in": ["p-1"]}},
        },
    )
    assert result.modified_count == 1
    doc = await users.find_one({"_id": 1})
    assert doc is not None
    assert [doc[field] for field in fields] == [[], ["p-1"], []]
    query = {"$or": [{field: {"$in": ["p-1"]}} for field in fields]}
    assert [d["_id"] for d in await users.find(query).to_list()] == [1]


async def test_upsert_with_set_on_insert_creates_once(shares: Collection) -> None:
    """An upsert of only `$setOnInsert` (`ensure_access`) creates the document once, then changes nothing."""
    create = {"$setOnInsert": {"is_public": False, "user_ids": [], "group_ids": []}}
    assert (await shares.update_one({"_id": "new"}, create, upsert=True)).upserted_id == "new"
    await shares.update_one({"_id": "new"}, {"$addToSet": {"user_ids": {"$each": [9]}}})
    again = await shares.update_one({"_id": "new"}, create, upsert=True)
    assert (again.matched_count, again.modified_count) == (1, 0)
    assert await shares.find_one({"_id": "new"}) == {
        "_id": "new",
        "is_public": False,
        "user_ids": [9],
        "group_ids": [],
    }


async def test_exists_false_finds_documents_missing_an_array(mongo_db: AsyncDatabase[Document]) -> None:
    """The start-up backfill finds user documents written before an array existed, and only those."""
    users = mongo_db["users"]
    await users.insert_many([{"_id": 1, "group_ids": [4]}, {"_id": 2}])
    result = await users.update_many({"group_ids": {"$exists": False}}, {"$set": {"group_ids": []}})
    assert result.modified_count == 1
    assert {d["_id"]: d["group_ids"] for d in await users.find({}).to_list()} == {1: [4], 2: []}


@pytest.fixture
async def users_with_a_gap(mongo_db: AsyncDatabase[Document]) -> Collection:
    """Integer `_id`s 1, 2, 4, 5 (3 was never stored, as when a failed insert used up its id)."""
    users = mongo_db["users"]
    await users.create_index("email_key", unique=True)
    await users.create_index("group_ids")
    for user_id in (1, 2, 4, 5):
        await users.insert_one({"_id": user_id, "email_key": f"u{user_id}", "group_ids": [7], "version": 0})
    return users


async def test_version_compare_and_set_changes_the_named_integer_id(users_with_a_gap: Collection) -> None:
    """`{_id: 4, version: 0}` updates user 4, and only once (how user documents change their arrays)."""
    update = {"$addToSet": {"group_ids": {"$each": [9]}}, "$inc": {"version": 1}}
    assert (await users_with_a_gap.update_one({"_id": 4, "version": 0}, update)).modified_count == 1
    assert (await users_with_a_gap.update_one({"_id": 4, "version": 0}, update)).matched_count == 0
    assert [d["_id"] for d in await users_with_a_gap.find({"group_ids": {"$in": [9]}}).to_list()] == [4]


async def test_reads_by_integer_id_and_array_condition_find_the_named_document(
    users_with_a_gap: Collection,
) -> None:
    """Finds that pair an integer `_id` with array conditions are right (only updates go wrong there)."""
    assert [d["_id"] for d in await users_with_a_gap.find({"_id": {"$in": [4, 5]}}).to_list()] == [4, 5]
    found = await users_with_a_gap.find({"_id": 4, "group_ids": {"$in": [7]}}).to_list()
    assert [d["_id"] for d in found] == [4]
