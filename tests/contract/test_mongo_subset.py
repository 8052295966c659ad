"""The MongoDB subset the code may rely on (MONGO_SUBSET.md), pinned against whichever server tests use.

Every behaviour listed there as "works the same" that the code relies on has one small test here, so a
server (or server version) that diverges fails loudly instead of corrupting data quietly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, DeleteOne, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from collections_hub.servers import start_mongo
from shared.mongo import Document

DUPLICATE_KEY = 11000

Collection = AsyncCollection[Document]


@pytest.fixture
def coll(mongo_db: AsyncDatabase[Document]) -> Collection:
    """A collection in the test's fresh database."""
    return mongo_db["things"]


@pytest.fixture
async def other_coll(mongodb_url: str, mongo_db: AsyncDatabase[Document]) -> AsyncIterator[Collection]:
    """The same collection seen through a second client, as another service instance would see it."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client[mongo_db.name]["things"]
    finally:
        await client.close()


# --- unique indexes ---------------------------------------------------------------------------------


async def test_unique_index_rejects_duplicate_insert(coll: Collection) -> None:
    """A unique index turns a second insert of the same key into DuplicateKeyError 11000, storing nothing."""
    await coll.create_index("email_key", unique=True)
    await coll.insert_one({"_id": "u1", "email_key": "a@example.org"})

    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": "u2", "email_key": "a@example.org"})

    assert caught.value.code == DUPLICATE_KEY
    assert await coll.count_documents({}) == 1


async def test_compound_unique_index_rejects_duplicate_pair_only(coll: Collection) -> None:
    """A compound unique index allows a repeated part but rejects a repeated pair with code 11000."""
    await coll.create_index([("owner", 1), ("name_key", 1)], unique=True)
    await coll.insert_one({"_id": "c1", "owner": 1, "name_key": "books"})
    await coll.insert_one({"_id": "c2", "owner": 1, "name_key": "films"})
    await coll.insert_one({"_id": "c3", "owner": 2, "name_key": "books"})

    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": "c4", "owner": 1, "name_key": "books"})

    assert caught.value.code == DUPLICATE_KEY
    assert await coll.count_documents({}) == 3


async def test_duplicate_id_insert_raises_duplicate_key(coll: Collection) -> None:
    """Inserting an existing string _id raises DuplicateKeyError 11000 and keeps the first document."""
    await coll.insert_one({"_id": "same", "v": 1})

    with pytest.raises(DuplicateKeyError) as caught:
        await coll.insert_one({"_id": "same", "v": 2})

    assert caught.value.code == DUPLICATE_KEY
    assert await coll.find_one({"_id": "same"}) == {"_id": "same", "v": 1}


async def test_unique_index_rejects_update_to_taken_value(coll: Collection) -> None:
    """update_one changing a unique field to a taken value raises 11000 and leaves the document as it was."""
    await coll.create_index("email_key", unique=True)
    await coll.insert_many([{"_id": "u1", "email_key": "a@x.org"}, {"_id": "u2", "email_key": "b@x.org"}])

    with pytest.raises(DuplicateKeyError) as caught:
        await coll.update_one({"_id": "u2"}, {"$set": {"email_key": "a@x.org", "name": "B"}})

    assert caught.value.code == DUPLICATE_KEY
    assert await coll.find_one({"_id": "u2"}) == {"_id": "u2", "email_key": "b@x.org"}


async def test_compound_unique_index_rejects_update_to_taken_pair(coll: Collection) -> None:
    """update_one making a compound key equal to another document's raises 11000 and changes nothing."""
    await coll.create_index([("owner", 1), ("name_key", 1)], unique=True)
    await coll.insert_many(
        [{"_id": "c1", "owner": 1, "name_key": "books"}, {"_id": "c2", "owner": 1, "name_key": "films"}]
    )

    with pytest.raises(DuplicateKeyError) as caught:
        await coll.update_one({"_id": "c2"}, {"$set": {"name_key": "books"}})

    assert caught.value.code == DUPLICATE_KEY
    assert await coll.find_one({"_id": "c2"}) == {"_id": "c2", "owner": 1, "name_key": "films"}


async def test_unique_index_violations_in_unordered_bulk_write(coll: Collection) -> None:
    """An unordered bulk_write raises BulkWriteError whose write errors are 11000, applying the rest."""
    await coll.create_index("email_key", unique=True)
    await coll.insert_many([{"_id": "u1", "email_key": "a@x.org"}, {"_id": "u2", "email_key": "b@x.org"}])

    with pytest.raises(BulkWriteError) as caught:
        await coll.bulk_write(
            [
                InsertOne({"_id": "u3", "email_key": "a@x.org"}),
                InsertOne({"_id": "u4", "email_key": "d@x.org"}),
                UpdateOne({"_id": "u2"}, {"$set": {"email_key": "d@x.org"}}),
                UpdateOne({"_id": "u1"}, {"$set": {"name": "A"}}),
            ],
            ordered=False,
        )

    errors = caught.value.details["writeErrors"]
    assert sorted(e["index"] for e in errors) == [0, 2]
    assert {e["code"] for e in errors} == {DUPLICATE_KEY}
    stored = await coll.find({}, sort=[("_id", 1)]).to_list()
    assert stored == [
        {"_id": "u1", "email_key": "a@x.org", "name": "A"},
        {"_id": "u2", "email_key": "b@x.org"},
        {"_id": "u4", "email_key": "d@x.org"},
    ]


async def test_unique_index_violation_stops_ordered_bulk_write(coll: Collection) -> None:
    """An ordered bulk_write stops at a duplicate with BulkWriteError 11000; earlier writes stay applied."""
    await coll.create_index([("owner", 1), ("name_key", 1)], unique=True)
    await coll.insert_one({"_id": "c1", "owner": 1, "name_key": "books"})

    with pytest.raises(BulkWriteError) as caught:
        await coll.bulk_write(
            [
                InsertOne({"_id": "c2", "owner": 1, "name_key": "films"}),
                InsertOne({"_id": "c3", "owner": 1, "name_key": "books"}),
                InsertOne({"_id": "c4", "owner": 1, "name_key": "games"}),
            ]
        )

    errors = caught.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(1, DUPLICATE_KEY)]
    assert [d["_id"] for d in await coll.find({}, {"_id": 1}, sort=[("_id", 1)]).to_list()] == ["c1", "c2"]


# --- update operators -------------------------------------------------------------------------------


async def test_set_unset_inc_min_max_on_scalars(coll: Collection) -> None:
    """$set, $unset, $inc, $min and $max change top-level scalars as MongoDB defines them."""
    await coll.insert_one({"_id": "d", "name": "old", "gone": 1, "n": 5, "low": 10, "high": 10})

    result = await coll.update_one(
        {"_id": "d"},
        {
            "$set": {"name": "new", "added": True},
            "$unset": {"gone": ""},
            "$inc": {"n": -2, "fresh": 3},
            "$min": {"low": 4},
            "$max": {"high": 20},
        },
    )

    assert result.modified_count == 1
    assert await coll.find_one({"_id": "d"}) == {
        "_id": "d",
        "name": "new",
        "added": True,
        "n": 3,
        "fresh": 3,
        "low": 4,
        "high": 20,
    }


async def test_min_max_leave_value_when_not_beyond(coll: Collection) -> None:
    """$min with a larger value and $max with a smaller one change nothing (modified_count 0)."""
    await coll.insert_one({"_id": "d", "low": 4, "high": 20})

    result = await coll.update_one({"_id": "d"}, {"$min": {"low": 9}, "$max": {"high": 11}})

    assert result.matched_count == 1
    assert result.modified_count == 0
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "low": 4, "high": 20}


async def test_set_unset_inc_min_max_on_dotted_paths(coll: Collection) -> None:
    """The same operators on dotted paths change only the addressed fields of sub-documents."""
    await coll.insert_one(
        {"_id": "d", "stats": {"views": 1, "low": 10, "high": 10, "keep": "k"}, "meta": {"a": 1, "b": 2}}
    )

    await coll.update_one(
        {"_id": "d"},
        {
            "$set": {"meta.a": 100, "meta.c.deep": "x"},
            "$unset": {"meta.b": ""},
            "$inc": {"stats.views": 2, "stats.likes": 1},
            "$min": {"stats.low": 3},
            "$max": {"stats.high": 30},
        },
    )
    await coll.update_one({"_id": "d"}, {"$min": {"stats.low": 5}, "$max": {"stats.high": 25}})

    assert await coll.find_one({"_id": "d"}) == {
        "_id": "d",
        "stats": {"views": 3, "low": 3, "high": 30, "keep": "k", "likes": 1},
        "meta": {"a": 100, "c": {"deep": "x"}},
    }


async def test_set_and_unset_whole_subdocument_under_dotted_key(coll: Collection) -> None:
    """$set of a whole sub-document at `outbox.<id>` stores it as a document; $unset removes only it."""
    entry_1 = {"id": "e1", "type": "a.b.c", "version": 1, "ids": {"k": 7}, "tags": ["x", "y"], "actor": None}
    entry_2 = {"id": "e2", "type": "a.b.d", "version": 1, "ids": {}, "tags": [], "actor": 3}
    await coll.insert_one({"_id": "d", "name": "n", "outbox": {}, "outbox_count": 0})

    await coll.update_one({"_id": "d"}, {"$set": {"outbox.e1": entry_1}, "$inc": {"outbox_count": 1}})
    await coll.update_one({"_id": "d"}, {"$set": {"outbox.e2": entry_2}, "$inc": {"outbox_count": 1}})
    both = await coll.find_one({"_id": "d"})
    await coll.update_one({"_id": "d"}, {"$unset": {"outbox.e1": ""}, "$inc": {"outbox_count": -1}})

    assert both == {"_id": "d", "name": "n", "outbox": {"e1": entry_1, "e2": entry_2}, "outbox_count": 2}
    assert await coll.find_one({"_id": "d"}) == {
        "_id": "d",
        "name": "n",
        "outbox": {"e2": entry_2},
        "outbox_count": 1,
    }


async def test_set_subdocument_creates_missing_parent(coll: Collection) -> None:
    """$set of `outbox.<id>` on a document without `outbox` creates the map with that one entry."""
    await coll.insert_one({"_id": "d"})

    await coll.update_one({"_id": "d"}, {"$set": {"outbox.e1": {"id": "e1", "n": 1}}})

    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "outbox": {"e1": {"id": "e1", "n": 1}}}


async def test_outbox_entry_exists_filter_matches_once(coll: Collection) -> None:
    """An update filtered on `outbox.<id>` $exists applies once; a repeat matches and modifies nothing."""
    await coll.insert_one({"_id": "d", "outbox": {"e1": {"id": "e1"}, "e2": {"id": "e2"}}, "outbox_count": 2})
    relay_ack = (
        {"_id": "d", "outbox.e1": {"$exists": True}},
        {"$unset": {"outbox.e1": ""}, "$inc": {"outbox_count": -1}},
    )

    first = await coll.update_one(*relay_ack)
    second = await coll.update_one(*relay_ack)

    assert (first.matched_count, first.modified_count) == (1, 1)
    assert (second.matched_count, second.modified_count) == (0, 0)
    assert await coll.find_one({"_id": "d"}) == {
        "_id": "d",
        "outbox": {"e2": {"id": "e2"}},
        "outbox_count": 1,
    }


async def test_outbox_entry_exists_filter_in_bulk_write_applies_once(coll: Collection) -> None:
    """The relay's unordered bulk of $exists-filtered acks applies each once, even when sent twice."""
    await coll.insert_many(
        [
            {"_id": "a", "outbox": {"e1": {"id": "e1"}, "e2": {"id": "e2"}}, "outbox_count": 2},
            {"_id": "b", "outbox": {"e3": {"id": "e3"}}, "outbox_count": 1},
        ]
    )
    acks = [
        UpdateOne(
            {"_id": doc_id, f"outbox.{event_id}": {"$exists": True}},
            {"$unset": {f"outbox.{event_id}": ""}, "$inc": {"outbox_count": -1}},
        )
        for doc_id, event_id in [("a", "e1"), ("a", "e2"), ("b", "e3")]
    ]

    first = await coll.bulk_write(acks, ordered=False)
    second = await coll.bulk_write(acks, ordered=False)

    assert (first.matched_count, first.modified_count) == (3, 3)
    assert (second.matched_count, second.modified_count) == (0, 0)
    assert await coll.find({}, sort=[("_id", 1)]).to_list() == [
        {"_id": "a", "outbox": {}, "outbox_count": 0},
        {"_id": "b", "outbox": {}, "outbox_count": 0},
    ]
    assert await coll.count_documents({"outbox_count": {"$gt": 0}}) == 0


async def test_add_to_set_each_dedupes_and_keeps_order(coll: Collection) -> None:
    """$addToSet with $each keeps existing order, appends new scalars once each in the given order."""
    await coll.insert_one({"_id": "d", "members": ["z", "a"]})

    result = await coll.update_one({"_id": "d"}, {"$addToSet": {"members": {"$each": ["m", "a", "b", "m"]}}})

    assert result.modified_count == 1
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "members": ["z", "a", "m", "b"]}


async def test_add_to_set_each_of_present_values_modifies_nothing(coll: Collection) -> None:
    """$addToSet with $each of values already present reports modified_count 0 and keeps the array."""
    await coll.insert_one({"_id": "d", "members": [3, 1, 2]})

    result = await coll.update_one({"_id": "d"}, {"$addToSet": {"members": {"$each": [2, 3]}}})

    assert (result.matched_count, result.modified_count) == (1, 0)
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "members": [3, 1, 2]}


async def test_add_to_set_on_an_array_initialised_at_insert(coll: Collection) -> None:
    """Arrays are created empty with the document, then $addToSet fills them (it never creates one)."""
    await coll.insert_one({"_id": "m", "members": []})
    result = await coll.update_one({"_id": "m"}, {"$addToSet": {"members": {"$each": ["a", "b"]}}})
    assert result.modified_count == 1
    assert await coll.find_one({"_id": "m"}) == {"_id": "m", "members": ["a", "b"]}


async def test_push_each_of_scalars_appends_in_order_under_a_nin_guard(coll: Collection) -> None:
    """`$push $each` of strings appends in order; a `$nin` guard makes a repeat match nothing."""
    await coll.insert_one({"_id": "p", "nodes": ["a"]})
    guard = {"_id": "p", "nodes": {"$nin": ["b", "c"]}}
    first = await coll.update_one(guard, {"$push": {"nodes": {"$each": ["b", "c"]}}})
    again = await coll.update_one(guard, {"$push": {"nodes": {"$each": ["b", "c"]}}})
    assert (first.modified_count, again.matched_count) == (1, 0)
    assert await coll.find_one({"_id": "p"}) == {"_id": "p", "nodes": ["a", "b", "c"]}


async def test_pull_in_removes_listed_scalars(coll: Collection) -> None:
    """$pull with $in removes every occurrence of the listed scalars and nothing else."""
    await coll.insert_one({"_id": "d", "members": ["z", "a", "m", "b", "a"]})

    result = await coll.update_one({"_id": "d"}, {"$pull": {"members": {"$in": ["a", "b", "x"]}}})
    again = await coll.update_one({"_id": "d"}, {"$pull": {"members": {"$in": ["a", "x"]}}})

    assert result.modified_count == 1
    assert again.modified_count == 0
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "members": ["z", "m"]}


# --- find_one_and_update, upserts, compare-and-set ----------------------------------------------------


async def test_find_one_and_update_returns_before_or_after(coll: Collection) -> None:
    """find_one_and_update returns the document before or after the update as asked."""
    await coll.insert_one({"_id": "d", "n": 1})

    before = await coll.find_one_and_update(
        {"_id": "d"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.BEFORE
    )
    after = await coll.find_one_and_update(
        {"_id": "d"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
    )
    missing = await coll.find_one_and_update({"_id": "nope"}, {"$inc": {"n": 1}})

    assert before == {"_id": "d", "n": 1}
    assert after == {"_id": "d", "n": 3}
    assert missing is None
    assert await coll.count_documents({}) == 1


async def test_set_on_insert_applies_only_when_upsert_inserts(coll: Collection) -> None:
    """$setOnInsert + upsert sets its fields on insert only, while $set applies on every call."""
    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    inserted = await coll.update_one(
        {"_id": "k"},
        {"$set": {"label": "first", "revoked_at": None}, "$setOnInsert": {"created_at": created}},
        upsert=True,
    )
    updated = await coll.update_one(
        {"_id": "k"},
        {"$set": {"label": "second"}, "$setOnInsert": {"created_at": created + timedelta(days=1)}},
        upsert=True,
    )

    assert inserted.upserted_id == "k"
    assert (updated.upserted_id, updated.matched_count, updated.modified_count) == (None, 1, 1)
    assert await coll.find_one({"_id": "k"}) == {
        "_id": "k",
        "label": "second",
        "revoked_at": None,
        "created_at": created,
    }


async def test_null_equality_filter_matches_null_not_values(coll: Collection) -> None:
    """A filter `{field: None}` matches a document whose field is null and not one holding a value."""
    await coll.insert_many([{"_id": "active", "revoked_at": None}, {"_id": "revoked", "revoked_at": 1}])
    at = datetime(2024, 5, 1, tzinfo=UTC)

    first = await coll.update_one({"_id": "active", "revoked_at": None}, {"$set": {"revoked_at": at}})
    second = await coll.update_one({"_id": "active", "revoked_at": None}, {"$set": {"revoked_at": at}})

    assert (first.modified_count, second.matched_count) == (1, 0)
    assert await coll.count_documents({"revoked_at": None}) == 0


async def test_version_compare_and_set_succeeds_once(coll: Collection) -> None:
    """An update filtered on version n applies once; a second with the same n matches nothing."""
    await coll.insert_one({"_id": "d", "version": 1, "name": "v1"})

    def cas(name: str) -> Awaitable[Any]:
        return coll.update_one({"_id": "d", "version": 1}, {"$set": {"name": name}, "$inc": {"version": 1}})

    first = await cas("first")
    second = await cas("second")

    assert (first.matched_count, first.modified_count) == (1, 1)
    assert (second.matched_count, second.modified_count) == (0, 0)
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "version": 2, "name": "first"}


async def test_concurrent_compare_and_set_has_one_winner(coll: Collection, other_coll: Collection) -> None:
    """Many concurrent updates filtered on the same version, from two clients: exactly one applies."""
    await coll.insert_one({"_id": "d", "version": 1, "writer": None})

    results = await asyncio.gather(
        *(
            (coll if i % 2 else other_coll).update_one(
                {"_id": "d", "version": 1}, {"$set": {"writer": i}, "$inc": {"version": 1}}
            )
            for i in range(20)
        )
    )

    winners = [i for i, r in enumerate(results) if r.modified_count == 1]
    assert len(winners) == 1
    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "version": 2, "writer": winners[0]}


# --- concurrency -------------------------------------------------------------------------------------


async def test_concurrent_inc_loses_nothing(coll: Collection, other_coll: Collection) -> None:
    """100 concurrent $inc on one document from two clients all count."""
    await coll.insert_one({"_id": "d", "n": 0, "stats": {"n": 0}})

    await asyncio.gather(
        *(
            (coll if i % 2 else other_coll).update_one({"_id": "d"}, {"$inc": {"n": 1, "stats.n": 2}})
            for i in range(100)
        )
    )

    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "n": 100, "stats": {"n": 200}}


async def test_concurrent_add_to_set_loses_nothing(coll: Collection, other_coll: Collection) -> None:
    """100 concurrent $addToSet of distinct values (each sent twice) from two clients all land once."""
    await coll.insert_one({"_id": "d", "members": []})

    await asyncio.gather(
        *(
            target.update_one({"_id": "d"}, {"$addToSet": {"members": {"$each": [f"m{i}"]}}})
            for i in range(50)
            for target in (coll, other_coll)
        )
    )

    doc = await coll.find_one({"_id": "d"})
    assert doc is not None
    assert sorted(doc["members"]) == sorted(f"m{i}" for i in range(50))


async def test_concurrent_subdocument_set_and_unset_lose_nothing(
    coll: Collection, other_coll: Collection
) -> None:
    """Concurrent `outbox.<id>` $set, then $exists-filtered $unset, from two clients keep the exact count."""
    await coll.insert_one({"_id": "d", "outbox": {}, "outbox_count": 0})

    await asyncio.gather(
        *(
            (coll if i % 2 else other_coll).update_one(
                {"_id": "d"}, {"$set": {f"outbox.e{i}": {"id": f"e{i}"}}, "$inc": {"outbox_count": 1}}
            )
            for i in range(50)
        )
    )
    await asyncio.gather(
        *(
            (coll if i % 2 else other_coll).update_one(
                {"_id": "d", f"outbox.e{i}": {"$exists": True}},
                {"$unset": {f"outbox.e{i}": ""}, "$inc": {"outbox_count": -1}},
            )
            for i in range(0, 50, 2)
        )
    )

    doc = await coll.find_one({"_id": "d"})
    assert doc is not None
    assert sorted(doc["outbox"]) == sorted(f"e{i}" for i in range(1, 50, 2))
    assert doc["outbox_count"] == 25


# --- the integer id sequence -------------------------------------------------------------------------


def _next_id(counters: Collection) -> Callable[[], Awaitable[int]]:
    """The repository's sequence: a counter document bumped with find_one_and_update."""

    async def next_id() -> int:
        counter = await counters.find_one_and_update(
            {"_id": "users"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        return int(counter["seq"])

    return next_id


async def test_counter_document_gives_1_2_3(coll: Collection) -> None:
    """find_one_and_update($inc, upsert=True, AFTER) on a counter gives 1, 2, 3, ... from nothing."""
    next_id = _next_id(coll)

    ids = [await next_id() for _ in range(5)]

    assert ids == [1, 2, 3, 4, 5]
    assert await coll.find_one({"_id": "users"}) == {"_id": "users", "seq": 5}


async def test_concurrent_counter_gives_distinct_consecutive_ids(
    coll: Collection, other_coll: Collection
) -> None:
    """Concurrent counter bumps from two clients hand out each integer exactly once, without gaps."""
    await _next_id(coll)()

    ids = await asyncio.gather(*(_next_id(coll if i % 2 else other_coll)() for i in range(60)))

    assert sorted(ids) == list(range(2, 62))


# --- reads -------------------------------------------------------------------------------------------


async def test_count_documents_with_and_without_filter(coll: Collection) -> None:
    """count_documents counts all documents, the filtered ones, and 0 on an empty match."""
    await coll.insert_many([{"_id": f"d{i}", "owner": i % 3, "outbox_count": i % 2} for i in range(10)])

    assert await coll.count_documents({}) == 10
    assert await coll.count_documents({"owner": 1}) == 3
    assert await coll.count_documents({"outbox_count": {"$gt": 0}}) == 5
    assert await coll.count_documents({"owner": 99}) == 0


async def test_sort_on_two_keys(coll: Collection) -> None:
    """A sort on two keys orders by the first, then by the second in its own direction."""
    rows = [("b", 1), ("a", 2), ("b", 3), ("a", 10), ("c", 0), ("a", 1)]
    await coll.insert_many([{"_id": f"d{i}", "owner": o, "rank": r} for i, (o, r) in enumerate(rows)])

    docs = await coll.find({}, {"_id": 0}, sort=[("owner", 1), ("rank", -1)]).to_list()

    assert [(d["owner"], d["rank"]) for d in docs] == [
        ("a", 10),
        ("a", 2),
        ("a", 1),
        ("b", 3),
        ("b", 1),
        ("c", 0),
    ]


async def test_skip_and_limit_page_through_a_sort(coll: Collection) -> None:
    """skip/limit over a sorted find return consecutive, non-overlapping pages."""
    await coll.insert_many([{"_id": f"d{i:02}", "n": i} for i in range(23)])

    pages = [
        [d["n"] for d in await coll.find({}, sort=[("n", 1)], skip=skip, limit=10).to_list()]
        for skip in (0, 10, 20, 30)
    ]

    assert pages == [list(range(10)), list(range(10, 20)), [20, 21, 22], []]


async def test_top_level_projections(coll: Collection) -> None:
    """Inclusion, _id exclusion and field exclusion projections return exactly the asked fields."""
    await coll.insert_one(
        {"_id": "d", "name": "n", "owner": 1, "outbox": {"e1": {"id": "e1"}}, "outbox_count": 1}
    )

    assert await coll.find_one({"_id": "d"}, {"outbox": 1}) == {"_id": "d", "outbox": {"e1": {"id": "e1"}}}
    assert await coll.find_one({"_id": "d"}, {"_id": 0, "name": 1, "owner": 1}) == {"name": "n", "owner": 1}
    assert await coll.find_one({"_id": "d"}, {"outbox": 0}) == {
        "_id": "d",
        "name": "n",
        "owner": 1,
        "outbox_count": 1,
    }


async def _keyset_walk(
    coll: Collection,
    key: str,
    page_size: int,
    between_pages: Callable[[int], Awaitable[None]],
) -> list[Any]:
    """Read every page by `key > last` sorted on key, calling `between_pages(page_number)` after each."""
    seen: list[Any] = []
    last: Any = None
    page_number = 0
    while True:
        query = {} if last is None else {key: {"$gt": last}}
        page = await coll.find(query, sort=[(key, 1)], limit=page_size).to_list()
        keys = [d[key] for d in page]
        assert keys == sorted(keys)
        seen.extend(keys)
        if len(page) < page_size:
            return seen
        last = keys[-1]
        page_number += 1
        await between_pages(page_number)


async def test_keyset_pagination_on_string_id_under_writes(coll: Collection) -> None:
    """Keyset pages on a string _id, with inserts and deletes between pages, skip or repeat no survivor."""
    rng = random.Random(27017)
    original = [f"{rng.getrandbits(40):x}" for _ in range(40)]
    await coll.insert_many([{"_id": i} for i in original])
    to_delete = rng.sample(original, 10)
    deleted = set(to_delete)

    async def churn(page_number: int) -> None:
        await coll.insert_many([{"_id": f"{rng.getrandbits(40):x}-new{page_number}"} for _ in range(3)])
        for doc_id in [to_delete.pop() for _ in range(min(2, len(to_delete)))]:
            await coll.delete_one({"_id": doc_id})

    seen = await _keyset_walk(coll, "_id", 6, churn)

    survivors = set(original) - deleted
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert survivors <= set(seen), f"skipped: {sorted(survivors - set(seen))}"
    assert seen == sorted(seen)


async def test_keyset_pagination_on_integer_field_under_writes(coll: Collection) -> None:
    """Keyset pages on an indexed integer field (numeric order, not text) skip or repeat no survivor."""
    await coll.create_index("seq", unique=True)
    rng = random.Random(11000)
    original = rng.sample(range(1, 100_000), 40)
    await coll.insert_many([{"_id": f"d{n}", "seq": n} for n in original])
    to_delete = rng.sample(original, 10)
    deleted = set(to_delete)
    fresh = iter(rng.sample(sorted(set(range(1, 100_000)) - set(original)), 30))

    async def churn(page_number: int) -> None:
        await coll.insert_many([{"_id": f"n{n}", "seq": n} for n in (next(fresh) for _ in range(3))])
        if doomed := [to_delete.pop() for _ in range(min(2, len(to_delete)))]:
            await coll.bulk_write([DeleteOne({"seq": n}) for n in doomed])

    seen = await _keyset_walk(coll, "seq", 6, churn)

    survivors = set(original) - deleted
    assert len(seen) == len(set(seen)), "an item was repeated"
    assert survivors <= set(seen), f"skipped: {sorted(survivors - set(seen))}"
    assert seen == sorted(seen)
    assert all(isinstance(n, int) for n in seen)


# --- ids and datetimes -------------------------------------------------------------------------------


async def test_string_ids_round_trip_and_match(coll: Collection) -> None:
    """String _ids and string reference fields are stored, matched and returned as the same strings."""
    ids = ["0f3a9c1e2b7d4c5a8e9f0a1b2c3d4e5f", "user-42", "ünïcødé", "42", "a.b"]
    await coll.insert_many([{"_id": i, "owner_id": i} for i in ids])

    for i in ids:
        assert await coll.find_one({"_id": i}) == {"_id": i, "owner_id": i}
        assert await coll.find_one({"owner_id": i}, {"_id": 1}) == {"_id": i}
    assert await coll.count_documents({"owner_id": {"$in": ["user-42", "42", "missing"]}}) == 2
    assert await coll.find_one({"owner_id": 42}) is None


async def test_integer_ids_match_by_equality(coll: Collection) -> None:
    """Integer _ids (users) are stored and found by equality as integers."""
    await coll.insert_many([{"_id": n, "email_key": f"u{n}@x.org"} for n in (1, 2, 10, 100)])

    assert await coll.find_one({"_id": 10}) == {"_id": 10, "email_key": "u10@x.org"}
    assert await coll.find_one({"_id": 3}) is None
    assert await coll.count_documents({"_id": {"$in": [1, 100, 7]}}) == 2


async def test_datetimes_round_trip_at_millisecond_precision_in_utc(coll: Collection) -> None:
    """An aware datetime comes back as a UTC-aware datetime with microseconds truncated to milliseconds."""
    utc_value = datetime(2024, 2, 29, 23, 59, 58, 123_987, tzinfo=UTC)
    offset_value = datetime(2024, 3, 1, 1, 0, 0, 456_789, tzinfo=timezone(timedelta(hours=2)))
    await coll.insert_one({"_id": "d", "at": utc_value, "local": offset_value, "nested": {"at": utc_value}})

    doc = await coll.find_one({"_id": "d"})

    assert doc is not None
    assert doc["at"] == datetime(2024, 2, 29, 23, 59, 58, 123_000, tzinfo=UTC)
    assert doc["at"].utcoffset() == timedelta(0)
    assert doc["local"] == datetime(2024, 2, 29, 23, 0, 0, 456_000, tzinfo=UTC)
    assert doc["local"].utcoffset() == timedelta(0)
    assert doc["nested"]["at"] == doc["at"]


async def test_datetime_from_set_on_insert_round_trips(coll: Collection) -> None:
    """A datetime written by $setOnInsert of an upsert reads back as the same UTC datetime."""
    at = datetime(2025, 1, 2, 3, 4, 5, 6_000, tzinfo=UTC)

    await coll.update_one({"_id": "d"}, {"$setOnInsert": {"created_at": at}}, upsert=True)

    assert await coll.find_one({"_id": "d"}) == {"_id": "d", "created_at": at}
    assert await coll.count_documents({"created_at": at}) == 1


async def test_boolean_set_by_update_still_matches_boolean_filters(coll: Collection) -> None:
    """A flag flipped by `$set` matches `True`/`False` filters (the stand-in reads it back as 1/0: coerce)."""
    await coll.insert_one({"_id": "f", "deleted": False})
    await coll.update_one({"_id": "f"}, {"$set": {"deleted": True}})
    assert await coll.count_documents({"_id": "f", "deleted": True}) == 1
    assert await coll.count_documents({"_id": "f", "deleted": False}) == 0
    stored = await coll.find_one({"_id": "f"})
    assert stored is not None
    assert bool(stored["deleted"]) is True


async def test_iso_timestamp_strings_set_order_and_compare(coll: Collection) -> None:
    """Timestamps kept as fixed-width ISO-8601 UTC strings survive $set, and sort and $max in time order."""
    early, late = "2025-01-02T03:04:05.007Z", "2025-11-30T23:59:59.999Z"
    await coll.insert_one({"_id": "t", "updated_at": early, "seen": {"last": early}})
    await coll.update_one({"_id": "t"}, {"$set": {"updated_at": late}, "$max": {"seen.last": late}})
    assert await coll.find_one({"_id": "t"}) == {"_id": "t", "updated_at": late, "seen": {"last": late}}
    await coll.insert_one({"_id": "u", "updated_at": "2025-06-01T00:00:00.000Z"})
    order = [d["_id"] async for d in coll.find({}, {"_id": 1}).sort("updated_at", 1)]
    assert order == ["u", "t"]
    assert await coll.count_documents({"updated_at": {"$gt": "2025-06-01T00:00:00.000Z"}}) == 1


async def test_facet_gives_a_page_and_the_total_in_one_command(coll: Collection) -> None:
    """`$match` + `$sort` + `$facet` answers one page (with an exclusion projection) and the full count."""
    await coll.insert_many([{"_id": f"i{n:03d}", "p": "x", "big": [n], "deleted": False} for n in range(30)])
    await coll.insert_one({"_id": "other", "p": "y", "deleted": False})
    pipeline = [
        {"$match": {"p": "x", "deleted": False}},
        {"$sort": {"_id": 1}},
        {
            "$facet": {
                "page": [{"$skip": 5}, {"$limit": 3}, {"$project": {"big": 0}}],
                "total": [{"$count": "n"}],
            }
        },
    ]
    [facet] = await (await coll.aggregate(pipeline)).to_list()
    assert facet["page"] == [{"_id": f"i{n:03d}", "p": "x", "deleted": False} for n in (5, 6, 7)]
    assert facet["total"] == [{"n": 30}]


# --- durability --------------------------------------------------------------------------------------


async def _write_then_stop(url: str, stop: Callable[[], object]) -> None:
    """Make 301 documents' worth of acknowledged writes, then call `stop` before anything else is sent."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    try:
        things = client["durable"]["things"]
        for i in range(100):
            await things.insert_one({"_id": f"one-{i}", "n": i})
        await asyncio.gather(*(things.insert_one({"_id": f"concurrent-{i}", "n": i}) for i in range(100)))
        await things.insert_many([{"_id": f"many-{i}", "n": i} for i in range(100)])
        await things.insert_one({"_id": "counter", "n": 0})
        await asyncio.gather(*(things.update_one({"_id": "counter"}, {"$inc": {"n": 1}}) for _ in range(50)))
        await things.update_one({"_id": "one-0"}, {"$set": {"outbox.e1": {"id": "e1"}}})
        await asyncio.to_thread(stop)
    finally:
        await client.close()


async def _assert_all_kept(url: str) -> None:
    """Every write `_write_then_stop` had acknowledged is there."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    try:
        things = client["durable"]["things"]
        assert await things.count_documents({}) == 301
        for prefix in ("one-", "concurrent-", "many-"):
            assert await things.count_documents({"_id": {"$gte": prefix, "$lt": prefix + "~"}}) == 100
        assert await things.find_one({"_id": "counter"}) == {"_id": "counter", "n": 50}
        assert await things.find_one({"_id": "one-0"}) == {
            "_id": "one-0",
            "n": 0,
            "outbox": {"e1": {"id": "e1"}},
        }
    finally:
        await client.close()


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
async def test_file_backed_server_keeps_acknowledged_writes_across_restart(
    tmp_path: Path, signal_name: str
) -> None:
    """Every write acked before a kill -9 (or SIGTERM) of a file-backed server is there after a restart."""
    proc, url = await asyncio.to_thread(start_mongo, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    try:
        await _write_then_stop(url, proc.kill if signal_name == "SIGKILL" else proc.stop)
        if signal_name == "SIGKILL":
            assert proc.process is not None
            assert proc.process.returncode == -9
    finally:
        await asyncio.to_thread(proc.stop)

    proc, url = await asyncio.to_thread(start_mongo, tmp_path, port)
    try:
        await _assert_all_kept(url)
    finally:
        await asyncio.to_thread(proc.stop)


async def test_max_of_an_integer_only_raises_and_sets_a_missing_field(coll: Collection) -> None:
    """`$max` of an integer sets a missing field, raises a lower one and leaves a higher one, also in an
    unordered bulk_write beside a `$set` (catalog's collection access version relies on it)."""
    await coll.insert_many([{"_id": "new"}, {"_id": "low", "v": 2}, {"_id": "high", "v": 9}])
    await coll.bulk_write(
        [UpdateOne({"_id": key}, {"$max": {"v": 5}}) for key in ("new", "low", "high")], ordered=False
    )
    await coll.update_one({"_id": "low"}, {"$set": {"flag": True}, "$max": {"v": 7}})
    assert {doc["_id"]: doc["v"] async for doc in coll.find({}, {"v": 1})} == {"new": 5, "low": 7, "high": 9}
