"""All MongoDB access of access_service: users, the id sequence and API keys."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import Conflict
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.outbox import ensure_outbox_index, new_document_outbox, with_events


class AccessRepository:
    """Users (integer ids from a sequence, unique lower-cased email) and API keys (by lookup id)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.users = db["users"]
        self.api_keys = db["api_keys"]
        self.counters = db["counters"]

    @property
    def outbox_collections(self) -> list[Any]:
        """Collections whose documents carry pending events for the relay."""
        return [self.users, self.api_keys]

    async def ensure_indexes(self) -> None:
        """Indexes the queries rely on (idempotent)."""
        await self.users.create_index("email_key", unique=True)
        await self.api_keys.create_index("user_id")
        for collection in self.outbox_collections:
            await ensure_outbox_index(collection)

    async def next_id(self, sequence: str) -> int:
        """The next integer of a named sequence (1, 2, 3, ...)."""
        counter = await self.counters.find_one_and_update(
            {"_id": sequence}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None  # upsert with AFTER always returns the document
        return int(counter["seq"])

    async def insert_user(self, user: Document, event: EventEnvelope) -> None:
        """Store a new user with its event; 409 when the e-mail is taken."""
        try:
            await self.users.insert_one({**user, **new_document_outbox(event)})
        except DuplicateKeyError as exc:
            raise Conflict("email already in use") from exc

    async def user_by_id(self, user_id: int) -> Document | None:
        """One user, or None."""
        return await self.users.find_one({"_id": user_id}, {"outbox": 0})

    async def user_by_email(self, email: str) -> Document | None:
        """One user by e-mail, case-insensitively."""
        return await self.users.find_one({"email_key": email.lower()}, {"outbox": 0})

    async def insert_api_key(self, key: Document, event: EventEnvelope) -> None:
        """Store a new API key (hash only) with its event."""
        await self.api_keys.insert_one({**key, **new_document_outbox(event)})

    async def upsert_api_key(self, key_id: str, fields: Document, now: str, event: EventEnvelope) -> None:
        """Make this exact key exist and be active (the operator's bootstrap key), with its event."""
        await self.api_keys.update_one(
            {"_id": key_id},
            with_events({"$set": {**fields, "revoked_at": None}, "$setOnInsert": {"created_at": now}}, event),
            upsert=True,
        )

    async def api_key(self, key_id: str) -> Document | None:
        """One API key by its lookup id."""
        return await self.api_keys.find_one({"_id": key_id}, {"outbox": 0})

    async def revoke_api_key(self, key_id: str, at: str, event: EventEnvelope) -> bool:
        """Mark an active key revoked, with its event; False when there is no such active key."""
        result = await self.api_keys.update_one(
            {"_id": key_id, "revoked_at": None}, with_events({"$set": {"revoked_at": at}}, event)
        )
        return result.modified_count == 1
