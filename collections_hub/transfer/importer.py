"""`collections-hub import`: an export file into this hub, as the importing user.

Collections are created in the target project (the importer's personal project for a user export), so
names, descriptions, tags, metadata and node members come back exactly; category goes through B, the
thumbnail through C. With an admin key at hand, a collection keeps its id where it is free here
(`POST /admin/collections`, owned by the importing user); a taken id, or an import without the admin key,
gets a new one (reported as a map). Registry items keep their id where it is free here;
a taken id holding another item is remapped (reported). Shares are restored by e-mail and group name
(`people.py`). History is not written back: it is this hub's own record of what happened here, and no API
writes it, so the import's own history (created, linked, shared) replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from collections_hub.client import Hub
from collections_hub.client.errors import BadRequest, Conflict
from collections_hub.client.ops import MAX_LINK_IDS, chunks
from collections_hub.transfer.archive import checked
from collections_hub.transfer.items import register
from collections_hub.transfer.people import People
from shared.principal import Principal

_A_FIELDS = ("description", "tags", "metadata")


@dataclass
class ImportReport:
    """What an import did, and every id that changed."""

    collections: int = 0
    members: int = 0
    shares: int = 0
    history_skipped: int = 0
    collection_ids: dict[str, str] = field(default_factory=dict)
    items_remapped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Current:
    source_id: str
    dest_id: str
    name: str | None  # the name dialect A finds it by here; None when it is not addressable by name
    thumbnail: str | None


class Importer:
    """Reads records in order and replays them against the destination."""

    def __init__(
        self,
        dest: Hub,
        *,
        admin: Hub | None = None,
        project: tuple[str, str] | None = None,
        on_collection: Callable[[int], None] | None = None,
    ) -> None:
        self.dest, self.project, self.admin = dest, project, admin
        self.people = People(dest, admin)
        self.on_collection = on_collection or (lambda _members: None)
        self.report = ImportReport()
        self.items: dict[str, str] = {}
        self.current: _Current | None = None
        self.current_members = 0
        self._principal: Principal | None = None

    def run(self, file: IO[str]) -> ImportReport:
        """Import every record, once the whole file is checked (a cut-short file imports nothing)."""
        for record in checked(file):
            handler = getattr(self, f"_on_{record['type']}", None)
            if handler is not None:
                handler(record)
        self._finish_collection()
        self.report.warnings.extend(self.people.unresolved)
        return self.report

    def _on_header(self, record: dict[str, Any]) -> None:
        if self.project is None:
            scope = record["scope"]
            if "project" in scope:
                namespace, slug = scope["project"].split("/", 1)
                self.project = (namespace, slug)
            else:
                self.project = ("personal", f"user-{self.dest.me().user_id}")

    def _on_collection(self, record: dict[str, Any]) -> None:
        self._finish_collection()
        assert self.project is not None
        fields = {k: record[k] for k in _A_FIELDS if record.get(k) is not None}
        if record.get("dataset_id"):
            self.report.warnings.append(
                f"{record['id']}: dataset {record['dataset_id']} not kept (the API cannot read a dataset)"
            )
        kept = self._keep_id(record, fields)
        if kept is not None:
            dest_id, name = kept
        else:
            dest_id, name = self._create(record, fields)
        if record.get("category") is not None and kept is None:
            self.dest.collections.update_details(dest_id, category=record["category"])
        if record.get("is_public"):
            self.dest.sharing.set_public(dest_id, True)
        self.current = _Current(record["id"], dest_id, name, record.get("thumbnail"))
        self.report.collection_ids[record["id"]] = dest_id

    def _keep_id(self, record: dict[str, Any], fields: dict[str, Any]) -> tuple[str, str | None] | None:
        """Create the collection under its exported id (admin key needed): (id, name it is found by), or
        None when the id is taken here or there is no admin key."""
        if self.admin is None or self.project is None:
            return None
        me = self._me()
        wanted = {
            "id": record["id"],
            "namespace": self.project[0],
            "project": self.project[1],
            "owner_id": me.user_id,
            "owner_email": me.email,
            "name": record["name"],
            "category": record.get("category"),
            **fields,
        }
        for unique_name in (True, False):
            try:
                self.admin.admin.import_collection(**wanted, unique_name=unique_name)
            except Conflict as exc:
                if "id already exists" in str(exc.body):
                    return None
                continue  # the name is taken in the project: keep the id, as a title that may repeat
            return record["id"], record["name"] if unique_name else None
        return None

    def _me(self) -> Principal:
        if self._principal is None:
            self._principal = self.dest.me()
        return self._principal

    def _create(self, record: dict[str, Any], fields: dict[str, Any]) -> tuple[str, str | None]:
        """Create the collection under a new id: (id, name it is found by, None when it may repeat)."""
        assert self.project is not None
        name: str | None = record["name"]
        try:
            dest_id = self.dest.project(*self.project).create(record["name"], **fields).id
        except Conflict:
            # Titles may repeat (dialects B and C); only one collection per project holds the name.
            made = self.dest.collections.create_detailed(
                record["name"], description=record.get("description"), tags=record.get("tags")
            )
            dest_id, name = made.id, None
            if record.get("metadata"):
                self.report.warnings.append(f"{record['id']}: metadata not kept (its name repeats)")
        return dest_id, name

    def _on_item(self, record: dict[str, Any]) -> None:
        key = f"{record['kind']}:{record['id']}"
        if key not in self.items:
            dest_id = register(self.dest, record["kind"], record["id"], record["name"], record.get("url"))
            self.items[key] = dest_id
            if dest_id != record["id"]:
                self.report.items_remapped[key] = dest_id

    def _on_members(self, record: dict[str, Any]) -> None:
        current = self._current(record)
        kind, ids = record["kind"], record["ids"]
        if kind == "node":
            if current.name is None:
                self.report.warnings.append(f"{current.source_id}: {len(ids)} node members not kept")
                return
            self.dest.project(*self.project or ("", "")).add_members(current.name, ids)
        else:
            links = self.dest.collections.assets if kind == "asset" else self.dest.collections.models
            mapped = [self.items.get(f"{kind}:{i}", i) for i in ids]
            for chunk in chunks(mapped, MAX_LINK_IDS):
                links.add(current.dest_id, chunk)
        self.current_members += len(ids)

    def _on_share(self, record: dict[str, Any]) -> None:
        current = self._current(record)
        if self.people.share_user(
            current.dest_id,
            record["email"],
            record["role"],
            record.get("first_name"),
            record.get("last_name"),
        ):
            self.report.shares += 1

    def _on_group_share(self, record: dict[str, Any]) -> None:
        current = self._current(record)
        if self.people.share_group(
            current.dest_id, record["name"], record.get("description"), record["members"]
        ):
            self.report.shares += 1

    def _on_history(self, _record: dict[str, Any]) -> None:
        self.report.history_skipped += 1

    def _current(self, record: dict[str, Any]) -> _Current:
        # `archive.read` refuses a record outside its collection before anything is imported.
        assert self.current is not None
        assert self.current.source_id == record["collection"]
        return self.current

    def _finish_collection(self) -> None:
        current = self.current
        if current is None:
            return
        if current.thumbnail:
            thumbnail = self.items.get(f"asset:{current.thumbnail}", current.thumbnail)
            try:
                self.dest.collections.update(current.dest_id, thumbnail_asset_id=thumbnail)
            except BadRequest as exc:
                self.report.warnings.append(f"{current.source_id}: thumbnail not kept: {exc.message}")
        self.report.collections += 1
        self.report.members += self.current_members
        self.on_collection(self.current_members)
        self.current, self.current_members = None, 0
