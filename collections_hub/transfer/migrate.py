"""`collections-hub migrate`: copy what a user owns at a dialect B or C service into this hub.

Per source collection the steps are: create (B: title, description, category, tags in one call; C: the
name), register its assets and models here (same ids where free), link them, set the thumbnail (C), make
it public (B), restore its shares (B). Each finished step is journaled (`journal.py`), so a rerun skips
what is done. The one step whose repeat would duplicate something is the create: its intent is journaled
before the call, and a rerun that finds an intent without an answer first looks for the collection that
call made (same owner, same name, created since the intent, mapped by no other source collection) and
adopts it. Links, visibility and shares are set operations, harmless to repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from collections_hub.client import Hub
from collections_hub.client.errors import ApiError, BadRequest, InvalidInput
from collections_hub.client.ops import MAX_LINK_IDS, chunks
from collections_hub.transfer.items import register_item, source_item
from collections_hub.transfer.journal import Journal, Progress
from collections_hub.transfer.people import People
from collections_hub.transfer.source import SourceCollection, SourceReader

KINDS = ("asset", "model")
# What the summary counts, per kind of thing copied (`MigrationReport.outcomes`).
OUTCOME_KINDS = ("collections", "assets", "models", "users", "groups")
OUTCOMES = ("created", "adopted", "skipped", "failed")
# How far a server's createdAt may lag the intent's local clock and still be that create's collection.
CLOCK_SKEW = timedelta(seconds=5)


class Listener:
    """Progress callbacks (the CLI draws bars from them); every one does nothing by default."""

    def started(self, total: int) -> None:
        """The number of collections to go through is known."""

    def collection_done(self, collection: SourceCollection, members: int) -> None:
        """One collection was copied (or was already), with its asset and model count."""


@dataclass
class PlanRow:
    """What a dry run would copy for one collection."""

    source_id: str
    name: str
    assets: int
    models: int
    public: bool
    users: int
    groups: int
    done: bool


def no_outcomes() -> dict[str, dict[str, int]]:
    """Every kind with every outcome at 0."""
    return {kind: dict.fromkeys(OUTCOMES, 0) for kind in OUTCOME_KINDS}


@dataclass
class MigrationReport:
    """What a run did. `outcomes` counts per kind: collections created (finished this run), adopted
    (made by an interrupted create), skipped (copied before), failed; registry items created here or
    adopted (the same item already here) or skipped (registered by an earlier run); users created (or
    invited as guests) or failed (not shared with); groups created or adopted (same name here) or failed.
    Users and groups count once each however many collections name them; `unshared` lists every share
    not restored, by collection."""

    total: int = 0
    copied: int = 0
    already_done: int = 0
    adopted: int = 0
    members: int = 0
    items_registered: int = 0
    items_remapped: dict[str, str] = field(default_factory=dict)
    shares: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    plan: list[PlanRow] = field(default_factory=list)
    collections: dict[str, str] = field(default_factory=dict)  # source id -> id here
    state_file: str = ""  # the journal this run read and appended to
    outcomes: dict[str, dict[str, int]] = field(default_factory=no_outcomes)
    unshared: list[str] = field(default_factory=list)


def now_iso() -> str:
    """The local clock as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat()


class Migrator:
    """Runs one migration: `run()` copies, `plan()` only reads."""

    def __init__(
        self,
        reader: SourceReader,
        dest: Hub,
        journal: Journal | None,
        *,
        admin: Hub | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.reader, self.dest, self.journal = reader, dest, journal
        self.listener = listener or Listener()
        self.report = MigrationReport()
        self.people = People(dest, admin, counted=self.count)
        self.items_seen: set[str] = set()  # registry items met in this run

    def count(self, kind: str, outcome: str) -> None:
        """One more `outcome` for `kind` in the summary."""
        self.report.outcomes[kind][outcome] += 1

    def plan(self) -> MigrationReport:
        """Read everything and say what would be copied; nothing is written anywhere."""
        collections = self.reader.collections()
        self.report.total = len(collections)
        self.listener.started(len(collections))
        for c in collections:
            items = self.reader.items(c)
            users, groups = self.reader.shares(c)
            done = self.journal is not None and "done" in self.journal.progress(c.id).steps
            row = PlanRow(
                c.id, c.name, len(items.assets), len(items.models), c.is_public, len(users), len(groups), done
            )
            self.report.plan.append(row)
            self.report.members += row.assets + row.models
            self.listener.collection_done(c, row.assets + row.models)
        return self.report

    def run(self) -> MigrationReport:
        """Copy every collection not copied yet; 4xx on one collection is reported and the run goes on."""
        assert self.journal is not None
        collections = self.reader.collections()
        self.report.total = len(collections)
        self.listener.started(len(collections))
        dest_owner = str(self.dest.me().user_id)
        for c in collections:
            progress = self.journal.progress(c.id)
            if "done" in progress.steps:
                self.report.already_done += 1
                self.count("collections", "skipped")
                self.report.collections[c.id] = progress.dest_id or ""
                self.listener.collection_done(c, 0)
                continue
            try:
                members = self._copy(c, progress, dest_owner)
            except ApiError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 429:
                    raise  # the service is in trouble: stop here; a rerun continues
                self.report.failed[c.id] = exc.message
                self.count("collections", "failed")
                members = 0
            except InvalidInput as exc:  # refused by the hub's own request models before sending
                self.report.failed[c.id] = "; ".join(str(e["msg"]) for e in exc.errors())
                self.count("collections", "failed")
                members = 0
            self.listener.collection_done(c, members)
        if self.report.unshared:  # one line, not one a share (a library shared with existing users has many)
            users, groups = (self.report.outcomes[kind]["failed"] for kind in ("users", "groups"))
            self.report.warnings.append(
                f"{len(self.report.unshared)} shares not restored ({users} users, {groups} groups failed): "
                "listed under `unshared` by --json"
            )
        return self.report

    def _copy(self, c: SourceCollection, progress: Progress, dest_owner: str) -> int:
        journal = self.journal
        assert journal is not None
        adopted_now = False
        if progress.dest_id is None:
            adopted = self._adopt(c, progress, dest_owner) if progress.intent_since else None
            if adopted is None:
                journal.append({"op": "intent", "source_id": c.id, "since": now_iso()})
                created = self._create(c)
            else:
                created, adopted_now = adopted, True
                self.report.adopted += 1
            journal.append({"op": "created", "source_id": c.id, "dest": created})
        assert progress.dest_id is not None
        dest_id = progress.dest_id
        self.report.collections[c.id] = dest_id
        members = 0
        if "items" not in progress.steps:
            members = self._link_items(c, dest_id)
            journal.append({"op": "step", "source_id": c.id, "step": "items"})
        if c.thumbnail and "thumbnail" not in progress.steps:
            thumbnail = journal.items.get(f"asset:{c.thumbnail}", c.thumbnail)
            self.dest.collections.update(dest_id, thumbnail_asset_id=thumbnail)
            journal.append({"op": "step", "source_id": c.id, "step": "thumbnail"})
        if c.is_public and "public" not in progress.steps:
            try:
                self.dest.sharing.set_public(dest_id, True)
            except BadRequest as exc:
                if "already" not in exc.message:
                    raise
            journal.append({"op": "step", "source_id": c.id, "step": "public"})
        if "shares" not in progress.steps:
            self._share(c, dest_id)
            journal.append({"op": "step", "source_id": c.id, "step": "shares"})
        journal.append({"op": "step", "source_id": c.id, "step": "done"})
        self.report.copied += 1
        self.count("collections", "adopted" if adopted_now else "created")
        return members

    def _create(self, c: SourceCollection) -> str:
        if self.reader.dialect == "b":
            return self.dest.collections.create_detailed(
                c.name, description=c.description, category=c.category, tags=c.tags
            ).id
        return self.dest.collections.create(c.name).id

    def _adopt(self, c: SourceCollection, progress: Progress, dest_owner: str) -> str | None:
        """The collection an interrupted create made here, if it made one."""
        assert self.journal is not None
        assert progress.intent_since is not None
        since = datetime.fromisoformat(progress.intent_since) - CLOCK_SKEW
        taken = self.journal.mapped_dest_ids()
        for candidate in self.dest.collections.list():
            created = datetime.fromisoformat(candidate.createdAt.replace("Z", "+00:00"))
            if (
                candidate.ownerId == dest_owner
                and candidate.name == c.name
                and created >= since
                and candidate.id not in taken
            ):
                return candidate.id
        return None

    def _link_items(self, c: SourceCollection, dest_id: str) -> int:
        assert self.journal is not None
        items = self.reader.items(c)
        if not items.complete:
            self.report.warnings.append(
                f"{c.id}: history shows {len(items.assets)} assets and {len(items.models)} models, "
                f"the collection counts {c.counts}; copied what history shows"
            )
        total = 0
        for kind in KINDS:
            ids = [self._item(kind, item_id) for item_id in items.of(kind)]
            links = self.dest.collections.assets if kind == "asset" else self.dest.collections.models
            for chunk in chunks(ids, MAX_LINK_IDS):
                links.add(dest_id, chunk)
            total += len(ids)
        self.report.members += total
        return total

    def _item(self, kind: str, source_id: str) -> str:
        """The id here of a source item, registering it on first sight."""
        assert self.journal is not None
        key = f"{kind}:{source_id}"
        if key in self.journal.items:
            if key not in self.items_seen:
                self.items_seen.add(key)
                self.count(f"{kind}s", "skipped")
            return self.journal.items[key]
        name, url = source_item(self.reader.hub, kind, source_id)
        dest_id, outcome = register_item(self.dest, kind, source_id, name, url)
        self.journal.append({"op": "item", "key": key, "dest": dest_id})
        self.items_seen.add(key)
        self.count(f"{kind}s", outcome)
        self.report.items_registered += 1
        if dest_id != source_id:
            self.report.items_remapped[key] = dest_id
        return dest_id

    def _share(self, c: SourceCollection, dest_id: str) -> None:
        users, groups = self.reader.shares(c)
        for user in users:
            role = user.user_role.name
            if self.people.share_user(dest_id, user.email, role, user.first_name, user.last_name):
                self.report.shares += 1
        for group in groups:
            emails = [u.email for u in group.users]
            if self.people.share_group(dest_id, group.name, group.description, emails):
                self.report.shares += 1
        self.report.unshared.extend(f"{c.id}: {why}" for why in self.people.unresolved)
        self.people.unresolved.clear()
