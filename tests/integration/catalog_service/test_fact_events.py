"""An access event's visibility fact, applied by catalog's consumer when access_service's own call did not
arrive: the shared collection's access version rises (so a revoked reader's cached allow is refused) and
the reader's list follows; an older event changes neither (catalog_service/consumers.py)."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.consumers import apply_fact_event
from catalog_service.reader_views import ReaderViews, user_reader, view_key
from catalog_service.repository import ACCESS_VERSION, CatalogRepository
from catalog_service.view_repository import ViewRepository
from shared import event_types as ev
from shared.mongo import Document


@pytest.fixture
async def views(mongo_db: AsyncDatabase[Document]) -> ReaderViews:
    await CatalogRepository(mongo_db).ensure_indexes()
    await ViewRepository(mongo_db).ensure_indexes()
    views = ReaderViews(ViewRepository(mongo_db), CatalogRepository(mongo_db))
    doc = {"_id": "c1", "project_id": "p1", "owner_id": 1, "name": "c1", "deleted": False}
    await mongo_db["collections"].insert_one(dict(doc))
    await views.collection_changed("c1", doc)
    return views


async def access_version(db: AsyncDatabase[Document]) -> int | None:
    doc = await db["collections"].find_one({"_id": "c1"})
    assert doc is not None
    return doc.get(ACCESS_VERSION)


def share_event(event_type: str, version: int) -> ev.EventEnvelope:
    """access_service's event for sharing c1 with user 2 (or ending it), at the access version."""
    return ev.event(event_type, ev.ShareChanged(), actor=1, collection_id="c1", user_id=2).at_entity_version(
        version
    )


async def test_a_share_event_raises_the_access_version_and_the_list_follows(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    """Shared at version 4, unshared at 5: the version is 5 and user 2's list is empty; the share event
    redelivered late changes nothing."""
    reader = view_key(user_reader(2))
    await apply_fact_event(views, share_event("access.collection.user_linked", 4))
    assert (await access_version(mongo_db), await views.all_ids(reader)) == (4, ["c1"])
    await apply_fact_event(views, share_event("access.collection.user_unlinked", 5))
    assert (await access_version(mongo_db), await views.all_ids(reader)) == (5, [])
    await apply_fact_event(views, share_event("access.collection.user_linked", 4))
    assert (await access_version(mongo_db), await views.all_ids(reader)) == (5, [])
