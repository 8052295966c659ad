"""Access's compare-and-set on a user's `version`, against a real server: a writer that loses every race to
writers that do make progress gives up after `CAS_ATTEMPTS` with a 503 instead of spinning, and one whose
update keeps missing while nobody else writes gives up after `CAS_STALLS`; neither writes anything."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.results import UpdateResult

from access_service.repository import CAS_ATTEMPTS, CAS_STALLS, AccessRepository
from shared.errors import Unavailable
from shared.event_types import GroupChanged, event
from shared.mongo import Document


class RivalWinsEveryRace:
    """The users collection, where another writer's update lands between each read and each update."""

    def __init__(self, real: AsyncCollection[Document]) -> None:
        self.real = real
        self.updates = 0

    async def find_one(self, *args: Any, **kwargs: Any) -> Document | None:
        return await self.real.find_one(*args, **kwargs)

    async def update_one(self, query: Document, update: Document) -> UpdateResult:
        self.updates += 1
        await self.real.update_one({"_id": query["_id"]}, {"$inc": {"version": 1}})  # the rival's write
        return await self.real.update_one(query, update)


def added() -> Any:
    return event("access.group.member_added", GroupChanged(name="g"), actor=1, group_id=7, user_id=42)


async def test_a_writer_losing_every_race_gives_up_after_the_cap(mongo_db: AsyncDatabase[Document]) -> None:
    repository = AccessRepository(mongo_db)
    await mongo_db["users"].insert_one({"_id": 42, "email": "u@example.com", "version": 3, "group_ids": []})
    rival = RivalWinsEveryRace(mongo_db["users"])

    def add(user: Document) -> tuple[Document, Document]:
        return {}, {"$addToSet": {"group_ids": {"$each": [7]}}}

    with pytest.raises(Unavailable):
        await repository._compare_and_set(rival, 42, add, added())  # type: ignore[arg-type]
    assert rival.updates == CAS_ATTEMPTS
    user = await mongo_db["users"].find_one({"_id": 42})
    assert user is not None
    assert user["group_ids"] == []  # never written
    assert user["version"] == 3 + CAS_ATTEMPTS  # only the rival's writes
    assert not user.get("outbox")


async def test_a_writer_whose_update_never_lands_with_no_rival_stops_after_the_stall_limit(
    mongo_db: AsyncDatabase[Document],
) -> None:
    repository = AccessRepository(mongo_db)
    await mongo_db["users"].insert_one({"_id": 42, "email": "u@example.com", "version": 3, "group_ids": []})
    calls = 0

    def never_matching(user: Document) -> tuple[Document, Document]:
        nonlocal calls
        calls += 1
        return {"no_such_field": True}, {"$addToSet": {"group_ids": {"$each": [7]}}}

    with pytest.raises(Unavailable):
        await repository._compare_and_set(mongo_db["users"], 42, never_matching, added())
    assert calls == CAS_STALLS + 1  # the first miss sees a version for the first time: not yet a stall
    user = await mongo_db["users"].find_one({"_id": 42})
    assert user is not None
    assert (user["group_ids"], user["version"]) == ([], 3)
