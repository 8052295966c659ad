"""Which assets and models a collection holds, and copying registry entries from one service to another.

No dialect lists a collection's assets or models (C shows counts, B nothing), so the sets are rebuilt
from the collection's history: every ASSET_LINKED / ASSET_UNLINKED / MODEL_LINKED / MODEL_UNLINKED entry
names exactly the ids it changed. History is recorded a moment after the change, so where counts are
known (dialect C) the rebuilt sets are checked against them and the history is read again until they
agree or `settle` seconds pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from collections_hub.client import Hub
from collections_hub.client.errors import Conflict, NotFound
from collections_hub.client.models import HistoryEntry, Item

_CHANGES = {
    "ASSET_LINKED": ("asset", True),
    "ASSET_UNLINKED": ("asset", False),
    "MODEL_LINKED": ("model", True),
    "MODEL_UNLINKED": ("model", False),
}


@dataclass
class LinkedItems:
    """The assets and models a collection holds, in the order they were first linked."""

    assets: dict[str, None] = field(default_factory=dict)
    models: dict[str, None] = field(default_factory=dict)
    complete: bool = True

    def of(self, kind: str) -> list[str]:
        """The ids of one kind."""
        return list(self.assets if kind == "asset" else self.models)


def replay(entries_newest_first: Iterable[HistoryEntry]) -> LinkedItems:
    """Apply the history's link changes oldest first (other entries, node ones included, are not kept)."""
    changes: list[tuple[str, bool, list[str]]] = []
    for entry in entries_newest_first:
        change = _CHANGES.get(entry.event_type)
        if change is not None:
            kind, linked = change
            ids = [str(t.target.id) for t in entry.event_targets if t.target_type.lower() == kind]
            changes.append((kind, linked, ids))
    items = LinkedItems()
    for kind, linked, ids in reversed(changes):
        target = items.assets if kind == "asset" else items.models
        for item_id in ids:
            if linked:
                target[item_id] = None
            else:
                target.pop(item_id, None)
    return items


def linked_items(
    read_history: Callable[[], Iterator[HistoryEntry]],
    expected: tuple[int, int] | None,
    *,
    settle: float = 5.0,
) -> LinkedItems:
    """The collection's items from its history; `expected` (assets, models) counts are waited for."""
    deadline = time.monotonic() + settle
    while True:
        items = replay(read_history())
        if expected is None or (len(items.assets), len(items.models)) == expected:
            return items
        if time.monotonic() >= deadline:
            items.complete = False
            return items
        time.sleep(0.2)


def source_item(source: Hub, kind: str, item_id: str) -> tuple[str, str | None]:
    """(name, url) of a registry entry at the source; a service without a registry gives (id, None)."""
    try:
        item = (source.assets if kind == "asset" else source.models).retrieve(item_id)
    except NotFound:
        return item_id, None
    return item.name, item.url


def register(dest: Hub, kind: str, item_id: str, name: str, url: str | None) -> str:
    """Register the item at the destination under its own id if free; the id it has there."""
    return register_item(dest, kind, item_id, name, url)[0]


def register_item(dest: Hub, kind: str, item_id: str, name: str, url: str | None) -> tuple[str, str]:
    """Register the item at the destination under its own id if free: (the id it has there, "created" or
    "adopted").

    A taken id holding the same name and url is the same item (registered by an earlier, interrupted
    run, or shared between sources) and is adopted; one holding anything else gets a fresh id (created).
    """
    registry = dest.assets if kind == "asset" else dest.models
    try:
        return registry.create(name, url=url, id=item_id).id, "created"
    except Conflict:
        existing: Item = registry.retrieve(item_id)
        if existing.name == name and existing.url == url:
            return existing.id, "adopted"
    return registry.create(name, url=url).id, "created"
