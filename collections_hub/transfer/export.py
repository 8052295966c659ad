"""`collections-hub export`: one project's or one user's collections to JSON Lines (see `archive.py`).

Fields come from the three dialects (A: name, description, tags, metadata, node members, dataset; B:
category, visibility, owner, original title; C: thumbnail and counts), assets and models from history
(`items.py`), shares from dialect B, history from dialect C. Memory stays flat in the number of members
(`pages.py` spools them); the items of one collection and the list of exported ids are held.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from collections_hub.client import Hub
from collections_hub.client.errors import NotFound
from collections_hub.client.ops import project_path
from collections_hub.transfer.archive import FORMAT, VERSION, Writer
from collections_hub.transfer.items import linked_items, source_item
from collections_hub.transfer.pages import SpooledCollection, project_collections

PERSONAL = "personal"
# A history entry lists every id its change named (up to 10,000 node ids for one call): one entry a page
# bounds memory by that per-call limit, never by the collection's size (5 a page measured 135 MB at 50,000).
HISTORY_PAGE = 1


def unwritable_reason(path: Path) -> str | None:
    """Why an export cannot be written at `path` (checked before any work), or None when it can."""
    directory = path.parent
    if path.is_dir():
        return f"{path} is a directory"
    if not directory.is_dir():
        return f"directory {directory} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot create files in {directory}"
    return None


@contextmanager
def partial_file(path: Path) -> Iterator[IO[str]]:
    """A hidden file beside `path`, renamed onto it when the export finishes and removed when it fails in
    any way (unreachable hub, error answer, Ctrl-C, a bug), so no truncated export is ever left at `path`
    and an earlier file there stays as it was. Only kill -9 leaves the hidden `.partial` file behind."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    partial = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o666 & ~umask)  # mkstemp makes 0600; a finished export gets a plain file's mode
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@dataclass
class ExportReport:
    """What was written."""

    collections: int = 0
    members: int = 0
    history: int = 0
    shares: int = 0
    warnings: list[str] = field(default_factory=list)


class Exporter:
    """Writes one scope: `project=(namespace, slug)`, or the collections `user_id` owns."""

    def __init__(
        self,
        hub: Hub,
        out: IO[str],
        *,
        project: tuple[str, str] | None = None,
        user_id: int | None = None,
        on_collection: Callable[[int], None] | None = None,
    ) -> None:
        self.hub, self.writer = hub, Writer(out)
        self.project, self.user_id = project, user_id
        self.on_collection = on_collection or (lambda _members: None)
        self.report = ExportReport()

    def run(self) -> ExportReport:
        """Write the header, every collection of the scope, and the closing counts."""
        scope: dict[str, Any]
        if self.project:
            scope = {"project": "/".join(self.project)}
        else:
            if self.user_id is None:
                self.user_id = self.hub.me().user_id
            scope = {"user": self.user_id}
        self.writer.write(
            {
                "type": "header",
                "format": FORMAT,
                "version": VERSION,
                "scope": scope,
                "exported_at": datetime.now(UTC).isoformat(),
            }
        )
        if self.project:
            for spooled in project_collections(self.hub, project_path(*self.project)):
                self._collection(spooled.fields, spooled)
        else:
            self._user()
        self.writer.write({"type": "end", "counts": dict(self.writer.counts)})
        return self.report

    def _user(self) -> None:
        """The personal project (where B and C put collections), then owned ones elsewhere (no nodes)."""
        seen: set[str] = set()
        for spooled in self._personal():
            seen.add(spooled.fields["id"])
            self._collection(spooled.fields, spooled)
        for c in self.hub.collections.list():
            if c.ownerId == str(self.user_id) and c.id not in seen:
                self.report.warnings.append(
                    f"{c.id}: outside the personal project; its node members are not exported "
                    "(the API reads nodes only by project and name)"
                )
                self._collection({"id": c.id, "name": c.name, "metadata": {}, "datasetId": None}, None)

    def _personal(self) -> Iterator[SpooledCollection]:
        """The personal project's collections; none when it is missing. Only the listing's 404 means that:
        one while a collection is written (deleted meanwhile) stops the export."""
        try:
            yield from project_collections(self.hub, project_path(PERSONAL, f"user-{self.user_id}"))
        except NotFound:
            return  # no personal project: the user never created a collection through B or C

    def _collection(self, fields: dict[str, Any], spooled: SpooledCollection | None) -> None:
        cid = fields["id"]
        details = self.hub.collections.details(cid)
        counted = self.hub.collections.retrieve(cid)
        self.writer.write(
            {
                "type": "collection",
                "id": cid,
                "name": fields["name"],
                "description": details.description,
                "category": details.category,
                "tags": details.tags,
                "metadata": fields.get("metadata") or {},
                "dataset_id": fields.get("datasetId"),
                "is_public": details.isPublic,
                "owner": details.owner,
                "original_title": details.original_title,
                "thumbnail": counted.thumbnail.assetId if counted.thumbnail else None,
                "created_at": counted.createdAt,
                "updated_at": counted.updatedAt,
            }
        )
        members = self.writer.members(cid, "node", spooled.members()) if spooled else 0
        items = linked_items(
            lambda: self.hub.history.list(cid, page_size=HISTORY_PAGE),
            (counted.assetCount, counted.modelCount),
        )
        if not items.complete:
            self.report.warnings.append(f"{cid}: history does not yet show every asset and model")
        for kind in ("asset", "model"):
            ids = items.of(kind)
            for item_id in ids:
                name, url = source_item(self.hub, kind, item_id)
                self.writer.write({"type": "item", "kind": kind, "id": item_id, "name": name, "url": url})
            members += self.writer.members(cid, kind, ids)
        self._shares(cid, details.owner)
        for entry in self.hub.history.list(cid, page_size=HISTORY_PAGE):
            self.writer.write({"type": "history", "collection": cid, "entry": entry.model_dump(mode="json")})
            self.report.history += 1
        self.report.collections += 1
        self.report.members += members
        self.on_collection(members)

    def _shares(self, cid: str, owner: str | None) -> None:
        for user in self.hub.sharing.users(cid):
            if user.email == owner:
                continue
            self.writer.write(
                {
                    "type": "share",
                    "collection": cid,
                    "email": user.email,
                    "role": user.user_role.name,
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                }
            )
            self.report.shares += 1
        for group in self.hub.sharing.groups(cid):
            self.writer.write(
                {
                    "type": "group_share",
                    "collection": cid,
                    "name": group.name,
                    "description": group.description,
                    "members": [u.email for u in group.users],
                }
            )
            self.report.shares += 1
