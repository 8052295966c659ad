"""All MongoDB access of access_service: users, API keys, groups, per-collection access and mail.

Documents (see docs/access.md):
- `users`: `_id` integer; `role`; `group_ids` (the user's groups) and `owner_of_projects`,
  `editor_of_projects`, `viewer_of_projects` (project ids by role), all created empty at insert, so one
  read of a user answers every question about the user; `version`, bumped by every change to those.
- `groups`: `_id` integer; name and description. Membership lives in the members' user documents.
- `collection_access`: `_id` collection id; `is_public`, `user_ids` (shared users and guests) and
  `group_ids`, created with empty arrays and `version` 0 on first use; `version`, bumped by every
  change to those.
- `outgoing_mail`: what the recording mailer was asked to send.

Users and access documents change only by compare-and-set on `version` (`_compare_and_set`), and each
change's event carries the version it brings the document to (`entity_version`), written in the same
update: consumers keep the newest version they applied and ignore older ones, so they converge on what
this service holds whatever order events reach them in.

Array membership is always queried with `$in: [x]` / `$nin: [x]`: on nx-27017 a plain equality or `$ne`
on an array field gives wrong answers. Ids are only ever values, never parts of a field path: nx-27017
silently matches nothing on a path such as `roles.proj-1`. Updates of a user (integer `_id`) never put an
array condition in the filter (see `_compare_and_set`).
tests/integration/access_service/test_mongo_contract.py pins what this module relies on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import Conflict, Unavailable
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.outbox import ensure_outbox_index, new_document_outbox, with_events, written

_NO_OUTBOX = {"outbox": 0, "outbox_count": 0}

# A user's project ids, one array per role; a project id is in at most one of them.
PROJECT_ROLE_FIELDS = {
    "owner": "owner_of_projects",
    "editor": "editor_of_projects",
    "viewer": "viewer_of_projects",
}
# Arrays every user document has (created empty at insert).
USER_ARRAYS = ("group_ids", *PROJECT_ROLE_FIELDS.values())
# A user or access document changes its state only by compare-and-set on this counter.
VERSION_FIELD = "version"
# Failed compare-and-sets in a row that saw no other writer succeed (the version did not move): something
# other than a race is wrong. A lost race is never counted: another writer made progress, so retry.
CAS_STALLS = 3
# Attempts of one compare-and-set in all: each lost one means another writer won, so a writer among 64
# busy ones gets through; past that the caller is told to try again (503) instead of spinning.
CAS_ATTEMPTS = 64

# What a change does to a document it was given: None (nothing to do), or (a filter condition the
# document must still meet, the update); the version guard and the event are added by `_compare_and_set`.
Change = Callable[[Document], tuple[Document, Document] | None]


class AccessRepository:
    """Users (integer ids from a sequence, unique lower-cased email), API keys, groups and shares."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.users = db["users"]
        self.api_keys = db["api_keys"]
        self.counters = db["counters"]
        self.groups = db["groups"]
        self.collection_access = db["collection_access"]
        self.outgoing_mail = db["outgoing_mail"]

    @property
    def outbox_collections(self) -> list[Any]:
        """Collections whose documents carry pending events for the relay."""
        return [self.users, self.api_keys, self.groups, self.collection_access]

    async def ensure_indexes(self) -> None:
        """Indexes the queries rely on, and arrays older user documents lack (idempotent)."""
        await self.users.create_index("email_key", unique=True)
        await self.users.create_index("role")
        for array in USER_ARRAYS:
            await self.users.create_index(array)
        await self.api_keys.create_index("user_id")
        await self.collection_access.create_index("user_ids")
        await self.collection_access.create_index("group_ids")
        for collection in self.outbox_collections:
            await ensure_outbox_index(collection)
        # `$addToSet` on a missing array does nothing on nx-27017: give older user documents theirs.
        for array in USER_ARRAYS:
            await self.users.update_many({array: {"$exists": False}}, {"$set": {array: []}})
        for versioned in (self.users, self.collection_access):
            await versioned.update_many({VERSION_FIELD: {"$exists": False}}, {"$set": {VERSION_FIELD: 0}})

    async def next_id(self, sequence: str) -> int:
        """The next integer of a named sequence (1, 2, 3, ...)."""
        counter = await self.counters.find_one_and_update(
            {"_id": sequence}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None  # upsert with AFTER always returns the document
        return int(counter["seq"])

    # --- users ------------------------------------------------------------------------------------------

    async def insert_user(self, user: Document, event: EventEnvelope) -> None:
        """Store a new user with its event; 409 when the e-mail is taken."""
        created = event.at_entity_version(int(user.get(VERSION_FIELD, 0)))
        try:
            await self.users.insert_one({VERSION_FIELD: 0, **user, **new_document_outbox(created)})
        except DuplicateKeyError as exc:
            raise Conflict("email already in use") from exc
        written(created)

    async def user_by_id(self, user_id: int) -> Document | None:
        """One user, or None."""
        return await self.users.find_one({"_id": user_id}, _NO_OUTBOX)

    async def user_by_email(self, email: str) -> Document | None:
        """One user by e-mail, case-insensitively."""
        return await self.users.find_one({"email_key": email.lower()}, _NO_OUTBOX)

    async def users_by_ids(self, user_ids: list[int]) -> list[Document]:
        """The users among these ids that exist (in no particular order)."""
        if not user_ids:
            return []
        return await self.users.find({"_id": {"$in": user_ids}}, _NO_OUTBOX).to_list()

    async def users_in_groups(self, group_ids: list[int]) -> list[Document]:
        """Members of any of these groups."""
        if not group_ids:
            return []
        return await self.users.find({"group_ids": {"$in": group_ids}}, _NO_OUTBOX).to_list()

    async def users_allowed_on(
        self, user_ids: list[int], group_ids: list[int], project_id: str
    ) -> list[Document]:
        """These users, members of these groups, holders of a role on the project, and every admin."""
        clauses: list[Document] = [
            {"_id": {"$in": user_ids}},
            {"role": "admin"},
            *({field: {"$in": [project_id]}} for field in PROJECT_ROLE_FIELDS.values()),
        ]
        if group_ids:
            clauses.append({"group_ids": {"$in": group_ids}})
        return await self.users.find({"$or": clauses}, _NO_OUTBOX).to_list()

    async def set_invite_pending(self, user_id: int, collection_id: str | None) -> None:
        """Mark (or clear, with None) a guest invitation that is not finished yet."""
        if collection_id is None:
            await self.users.update_one({"_id": user_id}, {"$unset": {"invite_pending": ""}})
        else:
            await self.users.update_one({"_id": user_id}, {"$set": {"invite_pending": collection_id}})

    # --- API keys ---------------------------------------------------------------------------------------

    async def insert_api_key(self, key: Document, event: EventEnvelope) -> None:
        """Store a new API key (hash only) with its event."""
        await self.api_keys.insert_one({**key, **new_document_outbox(event)})
        written(event)

    async def upsert_api_key(self, key_id: str, fields: Document, now: str, event: EventEnvelope) -> None:
        """Make this exact key exist (the operator's bootstrap key), with its event; a key revoked
        meanwhile stays revoked (its `_id` is taken, so the upsert's insert is refused)."""
        try:
            await self.api_keys.update_one(
                {"_id": key_id, "revoked_at": None},
                with_events({"$set": fields, "$setOnInsert": {"created_at": now, "revoked_at": None}}, event),
                upsert=True,
            )
        except DuplicateKeyError:
            return
        written(event)

    async def api_key(self, key_id: str) -> Document | None:
        """One API key by its lookup id."""
        return await self.api_keys.find_one({"_id": key_id}, _NO_OUTBOX)

    async def revoke_api_key(self, key_id: str, at: str, event: EventEnvelope) -> bool:
        """Mark an active key revoked, with its event; False when there is no such active key."""
        result = await self.api_keys.update_one(
            {"_id": key_id, "revoked_at": None}, with_events({"$set": {"revoked_at": at}}, event)
        )
        if result.modified_count == 1:
            written(event)
        return result.modified_count == 1

    # --- groups -----------------------------------------------------------------------------------------

    async def insert_group(self, group: Document, event: EventEnvelope) -> None:
        """Store a new group with its event."""
        await self.groups.insert_one({**group, **new_document_outbox(event)})
        written(event)

    async def group_by_id(self, group_id: int) -> Document | None:
        """One group, or None."""
        return await self.groups.find_one({"_id": group_id}, _NO_OUTBOX)

    async def groups_by_ids(self, group_ids: list[int]) -> list[Document]:
        """The groups among these ids that exist (in no particular order)."""
        if not group_ids:
            return []
        return await self.groups.find({"_id": {"$in": group_ids}}, _NO_OUTBOX).to_list()

    async def all_groups(self) -> list[Document]:
        """Every group (in no particular order: an integer `_id` sorts as text on nx-27017)."""
        return await self.groups.find({}, _NO_OUTBOX).to_list()

    async def add_group_member(self, group_id: int, user_id: int, event: EventEnvelope) -> int:
        """Put the user into the group, with its event: the user's new version, 0 when it already was in it
        (or is unknown)."""

        def add(user: Document) -> tuple[Document, Document] | None:
            if group_id in user.get("group_ids", []):
                return None
            return {}, {"$addToSet": {"group_ids": {"$each": [group_id]}}}

        return await self._compare_and_set(self.users, user_id, add, event)

    async def remove_group_member(self, group_id: int, user_id: int, event: EventEnvelope) -> int:
        """Take the user out of the group, with its event: the user's new version,
        0 when it was not in it."""

        def remove(user: Document) -> tuple[Document, Document] | None:
            if group_id not in user.get("group_ids", []):
                return None
            return {}, {"$pull": {"group_ids": {"$in": [group_id]}}}

        return await self._compare_and_set(self.users, user_id, remove, event)

    # --- project roles ----------------------------------------------------------------------------------

    async def set_project_role(self, user_id: int, project_id: str, role: str, event: EventEnvelope) -> int:
        """Give the user this role on the project (dropping another), with its event: the user's
        new version, 0 if it held it."""
        field = PROJECT_ROLE_FIELDS[role]
        others = [other for other in PROJECT_ROLE_FIELDS.values() if other != field]

        def grant(user: Document) -> tuple[Document, Document] | None:
            if project_id in user.get(field, []):
                return None
            return {}, {
                "$addToSet": {field: {"$each": [project_id]}},
                "$pull": {other: {"$in": [project_id]} for other in others},
            }

        return await self._compare_and_set(self.users, user_id, grant, event)

    async def remove_project_role(self, user_id: int, project_id: str, event: EventEnvelope) -> int:
        """Take the user's role on the project away, with its event: the user's
        new version, 0 when it held none."""
        fields = list(PROJECT_ROLE_FIELDS.values())

        def revoke(user: Document) -> tuple[Document, Document] | None:
            if not any(project_id in user.get(field, []) for field in fields):
                return None
            return {}, {"$pull": {field: {"$in": [project_id]} for field in fields}}

        return await self._compare_and_set(self.users, user_id, revoke, event)

    async def _compare_and_set(
        self,
        collection: AsyncCollection[Document],
        document_id: int | str,
        change: Change,
        event: EventEnvelope,
    ) -> int:
        """Apply `change(document)` with its event as a compare-and-set on `version`: the version written,
        or 0 when there was nothing to change.

        The event carries the version the update writes (`entity_version`), in the same single-document
        update. A lost race re-reads and decides again on the winner's state (which may make this call a
        no-op), so every concurrent writer ends with an answer while others make progress.

        Users take no state condition in the filter: on nx-27017 an update whose filter pairs an integer
        `_id` with an array condition changes the wrong document. `_id` plus a scalar equality is safe.
        """
        stalls = 0
        seen: object = object()  # no version read yet
        for _ in range(CAS_ATTEMPTS):
            document = await collection.find_one({"_id": document_id}, _NO_OUTBOX)
            if document is None:
                return 0
            planned = change(document)
            if planned is None:
                return 0
            condition, update = planned
            # None matches a document without the field (one written before versions existed).
            version = document.get(VERSION_FIELD)
            new_version = int(version or 0) + 1
            guarded = {**update, "$inc": {**update.get("$inc", {}), VERSION_FIELD: 1}}
            stamped = event.at_entity_version(new_version)
            result = await collection.update_one(
                {**condition, "_id": document_id, VERSION_FIELD: version}, with_events(guarded, stamped)
            )
            if result.modified_count == 1:
                written(stamped)
                return new_version
            stalls = stalls + 1 if version == seen else 0
            if stalls >= CAS_STALLS:
                break
            seen = version
        raise Unavailable("this change could not be written, try again")

    # --- per-collection access --------------------------------------------------------------------------

    async def access_of(self, collection_id: str) -> Document | None:
        """The collection's access document, or None when nothing was ever shared or made public."""
        return await self.collection_access.find_one({"_id": collection_id}, _NO_OUTBOX)

    async def ensure_access(self, collection_id: str, now: str) -> None:
        """Create the collection's access document (private, nothing shared, version 0) unless it exists."""
        with contextlib.suppress(DuplicateKeyError):  # two first calls at once: the other one created it
            await self.collection_access.update_one(
                {"_id": collection_id},
                {
                    "$setOnInsert": {
                        "is_public": False,
                        "user_ids": [],
                        "group_ids": [],
                        VERSION_FIELD: 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                },
                upsert=True,
            )

    async def set_public(self, collection_id: str, is_public: bool, now: str, event: EventEnvelope) -> int:
        """Flip the collection's visibility, with its event: the access document's new version, 0 when it
        already was so."""

        def flip(access: Document) -> tuple[Document, Document] | None:
            if bool(access.get("is_public")) == is_public:
                return None
            return {"is_public": not is_public}, {"$set": {"is_public": is_public, "updated_at": now}}

        return await self._compare_and_set(self.collection_access, collection_id, flip, event)

    async def link(self, collection_id: str, field: str, member: int, now: str, event: EventEnvelope) -> int:
        """Add a user or group id to `user_ids`/`group_ids`, with its event: its version,
        0 when already there."""
        share_field = _share_field(field)

        def add(access: Document) -> tuple[Document, Document] | None:
            if member in access.get(share_field, []):
                return None
            return (
                {share_field: {"$nin": [member]}},
                {"$addToSet": {share_field: {"$each": [member]}}, "$set": {"updated_at": now}},
            )

        return await self._compare_and_set(self.collection_access, collection_id, add, event)

    async def unlink(
        self, collection_id: str, field: str, member: int, now: str, event: EventEnvelope
    ) -> int:
        """Remove a user or group id from `user_ids`/`group_ids`, with its event: its version,
        0 when absent."""
        share_field = _share_field(field)

        def remove(access: Document) -> tuple[Document, Document] | None:
            if member not in access.get(share_field, []):
                return None
            return (
                {share_field: {"$in": [member]}},
                {"$pull": {share_field: {"$in": [member]}}, "$set": {"updated_at": now}},
            )

        return await self._compare_and_set(self.collection_access, collection_id, remove, event)

    async def shared_collections(self) -> AsyncIterator[Document]:
        """Every collection's access document that shares it with anyone (the lists' one-off catch-up)."""
        cursor = self.collection_access.find({}, {"user_ids": 1, "group_ids": 1, VERSION_FIELD: 1})
        async for access in cursor:
            if access.get("user_ids") or access.get("group_ids"):
                yield access

    async def users_with_grants(self) -> AsyncIterator[Document]:
        """Every user in a group or with a project role (the lists' one-off catch-up)."""
        fields = ["group_ids", *PROJECT_ROLE_FIELDS.values()]
        async for user in self.users.find({}, {VERSION_FIELD: 1, **dict.fromkeys(fields, 1)}):
            if any(user.get(field) for field in fields):
                yield user

    async def marked(self, mark: str) -> bool:
        """Whether a one-off task recorded that it is done."""
        return await self.db["marks"].find_one({"_id": mark}) is not None

    async def mark(self, mark: str) -> None:
        """Record that a one-off task is done."""
        await self.db["marks"].update_one({"_id": mark}, {"$set": {"done": 1}}, upsert=True)

    # --- mail -------------------------------------------------------------------------------------------

    async def record_mail(self, mail: Document) -> None:
        """Keep a message the recording mailer was given; the same message id is kept once."""
        fields = {name: value for name, value in mail.items() if name != "_id"}
        await self.outgoing_mail.update_one({"_id": mail["_id"]}, {"$setOnInsert": fields}, upsert=True)


def _share_field(field: str) -> str:
    """Allow-list the share arrays a filter may name."""
    if field not in ("user_ids", "group_ids"):
        raise ValueError(f"not a share field: {field}")
    return field
