"""Use cases of membership: nodes (dialect A), assets and models (B and C) in and out of collections.

Members are documents of their own (catalog_service/member_repository.py), so a change costs the same at
1,000,000 members as at none, concurrent writers never conflict, and counts and events name exactly the
ids that changed. A change a crash interrupted is finished by `recover_stale` (docs/scale.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Sequence

import pymongo
from pymongo.errors import PyMongoError

from catalog_service.items import Registry
from catalog_service.lookup import CollectionLookup, collection_not_found, selector_of
from catalog_service.member_repository import (
    PENDING,
    THUMBNAIL_DUE,
    MemberKind,
    MemberRepository,
    PendingChange,
)
from catalog_service.repository import WITHOUT_MEMBERS, ItemKind
from shared import event_types as ev
from shared.clock import timestamp
from shared.errors import Dialect, Invalid, Unavailable
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.principal import Principal

log = logging.getLogger(__name__)

EVENTS: dict[tuple[MemberKind, bool], str] = {
    ("node", True): "catalog.collection.members_added",
    ("node", False): "catalog.collection.members_removed",
    ("asset", True): "catalog.collection.assets_linked",
    ("asset", False): "catalog.collection.assets_unlinked",
    ("model", True): "catalog.collection.models_linked",
    ("model", False): "catalog.collection.models_unlinked",
}
MIGRATION_BATCH = 100
REPLACE_CHUNK = 10_000  # members removed per change by a full replace (one event each)


def now_ms() -> int:
    """Wall-clock milliseconds: when a pending change began (recovery takes only old ones)."""
    return time.time_ns() // 1_000_000


def member_event(
    change: PendingChange, changed: list[str], actor: int | None, project_id: str
) -> EventEnvelope:
    """The change's event, with the change's id as event id (recovery republishes the very same event)
    and its change number as entity version: a member is only ever flipped by changes of rising number,
    so events in that order replay to exactly the members."""
    event = ev.event(
        EVENTS[(change.kind, change.add)],
        ev.ItemsChanged(kind=change.kind, ids=changed),
        actor=actor,
        collection_id=change.collection_id,
        project_id=project_id,
    )
    return event.model_copy(update={"id": change.op_id, "entity_version": change.number})


def thumbnail_due(change: PendingChange, ids: Sequence[str]) -> int:
    """When an asset change may move the thumbnail (ms; 0: it may not): an add to a collection showing
    none, or a removal of the asset it shows, as the collection was when the change began."""
    if change.kind != "asset":
        return 0
    shown = change.collection.get("thumbnail")
    if (change.add and shown is None) or (
        not change.add and shown is not None and shown.get("asset_id") in ids
    ):
        return now_ms()
    return 0


def thumbnail_of(asset_id: str, known: dict[str, Document]) -> Document:
    """The thumbnail showing an asset, with its URL when the registry knows one."""
    thumbnail: Document = {"asset_id": asset_id}
    if url := known.get(asset_id, {}).get("url"):
        thumbnail["url"] = url
    return thumbnail


class Membership:
    """Adds and removes members, keeps counts and the C thumbnail, and finishes interrupted changes."""

    def __init__(
        self,
        members: MemberRepository,
        lookup: CollectionLookup,
        registry: Registry,
        *,
        stale_after_seconds: float = 30.0,
    ) -> None:
        self.members = members
        self.lookup = lookup
        self.registry = registry
        self.stale_after_ms = int(stale_after_seconds * 1000)

    async def change(
        self,
        principal: Principal,
        collection_id: str,
        kind: MemberKind,
        ids: Sequence[str],
        *,
        add: bool,
        expected_name: str | None = None,
        known: dict[str, Document] | None = None,
    ) -> tuple[Document, list[str]]:
        """Add or remove members of a collection the caller may change: the collection after (counts
        included) and the ids that changed. Three commands, whatever the collection holds."""
        ref = await self.lookup.ref(collection_id)
        await self.lookup.require(principal, ref, "write")
        unique = list(dict.fromkeys(ids))
        selector = selector_of(collection_id, expected_name)
        change = await self.members.begin(
            selector,
            kind,
            add=add,
            count=len(unique),
            actor=principal.user_id,
            now_ms=now_ms(),
        )
        if change is None:
            raise collection_not_found()
        return await self.complete(
            change, unique, actor=principal.user_id, project_id=ref.project_id, known=known
        )

    async def complete(
        self,
        change: PendingChange,
        ids: Sequence[str],
        *,
        actor: int,
        project_id: str,
        known: dict[str, Document] | None = None,
        announce: bool = True,
    ) -> tuple[Document, list[str]]:
        """Steps 2 and 3 of a change that `begin` started (`announce=False`: no event for the members).

        Step 2 must be over well before recovery may take the change for a crashed one (the stale limit):
        it is not started past half that limit, and is bounded by what is left of it (`pymongo.timeout`
        sets the server's time limit too). A late change answers 503, and recovery finishes it with
        whatever it flipped; without the bound, a write landing after recovery read the change would flip
        members that no count and no event ever tells."""
        remaining = (change.began_ms + self.stale_after_ms // 2 - now_ms()) / 1000
        if remaining <= 0:
            raise Unavailable("this change took too long, try again")
        with pymongo.timeout(remaining):
            changed = await self.members.apply(change, ids)
        update: Document = {"$set": {"updated_at": timestamp()}}
        if due := thumbnail_due(change, ids):  # the thumbnail step below runs once the counts are in
            update["$set"][THUMBNAIL_DUE] = due
        events = [member_event(change, changed, actor, project_id)] if changed and announce else []
        doc = await self.members.finish(change, len(changed), update, events, WITHOUT_MEMBERS)
        if doc is None:  # recovery finished it first (it took longer than the stale limit)
            doc = await self.lookup.repo.collection_any(change.collection_id, WITHOUT_MEMBERS)
        if doc is None:
            raise collection_not_found()
        if change.kind == "asset" and changed:
            doc = await self._keep_thumbnail(doc, change, changed, known or {}, actor=actor)
        if due:
            await self.members.thumbnail_checked(change.collection_id, due)
        return doc, changed

    async def _keep_thumbnail(
        self,
        doc: Document,
        change: PendingChange,
        changed: list[str],
        known: dict[str, Document],
        *,
        actor: int,
    ) -> Document:
        """The first asset added while none is shown becomes the thumbnail; removing it clears it.

        Each is a conditional update of its own, after the counts (those must never wait on it): one
        more command, only when the thumbnail changes. An add that set it checks its asset is still a
        member afterwards, and a removal looks at the thumbnail after its own change, so a concurrent
        add and removal of the same asset never leave a thumbnail that is not in the collection.
        """
        current = doc.get("thumbnail")
        if change.add and current is None:
            chosen = changed[0]
            thumbnail = thumbnail_of(chosen, known)
            if await self._show(doc, None, thumbnail, actor):
                doc = {**doc, "thumbnail": thumbnail}
                if not await self.members.is_member(doc["_id"], "asset", chosen):
                    await self._show(doc, chosen, None, actor)
                    doc = {**doc, "thumbnail": None}
        elif (
            not change.add
            and current is not None
            and current.get("asset_id") in changed
            and await self._show(doc, current["asset_id"], None, actor)
        ):
            doc = {**doc, "thumbnail": None}
        return doc

    async def recheck_thumbnail(self, doc: Document, asset_id: str, actor: int) -> Document:
        """A thumbnail chosen by hand, after it is shown: if its asset was unlinked meanwhile (that unlink
        may have looked at the thumbnail before it was shown), it goes."""
        if await self.members.is_member(doc["_id"], "asset", asset_id):
            return doc
        if await self._show(doc, asset_id, None, actor):
            return {**doc, "thumbnail": None}
        return doc

    async def _show(
        self, doc: Document, expected: str | None, thumbnail: Document | None, actor: int | None
    ) -> bool:
        event = ev.event(
            "catalog.collection.thumbnail_set",
            ev.ThumbnailSet(asset_id=thumbnail["asset_id"] if thumbnail else None),
            actor=actor,
            collection_id=doc["_id"],
            project_id=doc["project_id"],
        )
        return await self.lookup.repo.set_thumbnail(doc["_id"], expected, thumbnail, event)

    async def link_items(
        self, principal: Principal, collection_id: str, kind: ItemKind, ids: list[str], *, add: bool
    ) -> Document:
        """Dialects B and C: link or unlink registered assets or models; unknown ids are rejected (400)."""
        known = await self.registry.known_items(kind, list(dict.fromkeys(ids)))
        if unknown := [i for i in ids if i not in known]:
            raise Invalid(
                f"{kind} not found: {', '.join(unknown[:10])}", wording={Dialect.B: f"{kind} not found"}
            )
        doc, _ = await self.change(principal, collection_id, kind, ids, add=add, known=known)
        return doc

    async def replace_nodes(
        self, principal: Principal, collection_id: str, nodes: list[str], *, expected_name: str | None
    ) -> Document:
        """Dialect A's full replace: remove what is not in `nodes`, then add what is new (kept ones stay
        where they were); the collection after.

        Whatever the collection holds, memory and each change stay bounded: the members to remove are
        found a chunk at a time (each pass reads from the first member on; the removed ones are gone from
        the next), and each chunk is one change with its own event."""
        ref = await self.lookup.ref(collection_id)
        await self.lookup.require(principal, ref, "write")
        wanted = list(dict.fromkeys(nodes))
        keep = set(wanted)
        present: set[str] = set()
        doc = None
        while True:
            gone: list[str] = []
            async with contextlib.aclosing(self.members.item_ids(collection_id, "node")) as members:
                async for item in members:
                    if item in keep:
                        present.add(item)
                    elif len(gone) < REPLACE_CHUNK:
                        gone.append(item)
                    else:
                        break
            if not gone:
                break
            doc, _ = await self.change(
                principal, collection_id, "node", gone, add=False, expected_name=expected_name
            )
        if new := [item for item in wanted if item not in present]:
            doc, _ = await self.change(
                principal, collection_id, "node", new, add=True, expected_name=expected_name
            )
        if doc is None:
            doc = await self.lookup.repo.collection(collection_id, WITHOUT_MEMBERS)
        if doc is None:
            raise collection_not_found()
        return doc

    async def items_of(self, collection_id: str, kind: MemberKind) -> AsyncIterator[str]:
        """The item ids of one collection's members, in the order they were added."""
        async for item in self.members.item_ids(collection_id, kind):
            yield item

    async def is_member(self, collection_id: str, kind: MemberKind, item_id: str) -> bool:
        """Whether the item is a member of the collection now."""
        return await self.members.is_member(collection_id, kind, item_id)

    # --- recovery and migration ---------------------------------------------------------------------------
    async def recover_stale(self) -> int:
        """Finish every change pending for longer than the stale limit (a crash interrupted it): count and
        publish exactly the members it flipped. Returns how many changes it finished."""
        cutoff = now_ms() - self.stale_after_ms
        finished = 0
        async for doc in self.members.collections_with_pending_changes():
            for op_id, mark in (doc.get(PENDING) or {}).items():
                if int(mark.get("t", 0)) > cutoff:
                    continue
                try:
                    finished += await self._finish_stale(doc, op_id, mark)
                except PyMongoError as exc:  # one that cannot be finished now must not hold up the others
                    log.warning(
                        "could not finish an interrupted membership change, will retry: %s",
                        exc,
                        extra={"collection_id": doc["_id"], "op": op_id},
                    )
        return finished

    async def _finish_stale(self, doc: Document, op_id: str, mark: Document) -> int:
        """Finish one interrupted change with exactly the members it flipped: 1, or 0 if finished already."""
        change = PendingChange(
            op_id=op_id,
            collection_id=doc["_id"],
            kind=mark["k"],
            add=bool(mark["a"]),
            number=0,
            first_position=0,
            held=(),
            collection=doc,
        )
        changed, number = await self.members.flipped_by(change)
        change = dataclasses.replace(change, number=number)
        announce = changed and not mark.get("n")
        events = [member_event(change, changed, mark.get("u"), doc["project_id"])] if announce else []
        update: Document = {"$set": {"updated_at": timestamp()}}
        if change.kind == "asset" and changed:  # its thumbnail step never ran: the next round checks it
            update["$set"][THUMBNAIL_DUE] = 0
        if await self.members.finish(change, len(changed), update, events, {"_id": 1}) is None:
            return 0
        log.warning(
            "finished an interrupted membership change",
            extra={"collection_id": doc["_id"], "op": op_id, "changed": len(changed)},
        )
        return 1

    async def recover_thumbnails(self) -> int:
        """Check the thumbnail of every collection whose asset change finished but whose thumbnail step
        did not run (a crash between them): one of an asset no longer linked goes, and a collection with
        assets and none shows its first. Returns how many were checked."""
        checked = 0
        for doc in await self.members.thumbnails_due(now_ms() - self.stale_after_ms):
            await self._settle_thumbnail(doc)
            await self.members.thumbnail_checked(doc["_id"], doc[THUMBNAIL_DUE])
            checked += 1
        return checked

    async def _settle_thumbnail(self, doc: Document) -> None:
        """The thumbnail as the members are now: none of an unlinked asset, the first asset's if none."""
        current = doc.get("thumbnail")
        if current is not None:
            if not await self.members.is_member(doc["_id"], "asset", current["asset_id"]):
                await self._show(doc, current["asset_id"], None, None)
            return
        async with contextlib.aclosing(self.members.item_ids(doc["_id"], "asset")) as assets:
            first = await anext(assets, None)
        if first is not None:
            known = await self.registry.known_items("asset", [first])
            await self._show(doc, None, thumbnail_of(first, known), None)

    async def migrate_legacy_layout(self) -> int:
        """Move every collection still holding member arrays to member documents; members moved.

        Once done it says so in one document: later starts read that instead of looking for arrays
        (a query no index serves)."""
        if await self.members.migrated():
            return 0
        moved = 0
        done = 0
        while batch := await self.members.legacy_collections(MIGRATION_BATCH):
            for doc in batch:
                moved += await self.members.migrate_legacy(doc["_id"])
                done += 1
            log.info(
                "migrating members to their own documents", extra={"collections": done, "members": moved}
            )
        if done:
            log.info("member migration finished", extra={"collections": done, "members": moved})
        await self.members.mark_migrated()
        return moved
