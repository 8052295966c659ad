"""The export file: JSON Lines, one record a line, written and read as a stream.

Records, in file order, per collection: `collection`, then `members` (node ids, 1,000 a line), then
`item` (each linked asset/model's registry entry) and `members` of kind asset/model, then `share` and
`group_share`, then `history` (newest first). The file opens with `header` and closes with `end` (counts,
so a truncated file is detected).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

FORMAT = "collections-hub/export"
VERSION = 1
MEMBERS_PER_LINE = 1_000


class ArchiveError(ValueError):
    """The file is not an export this version can read, or it was cut short."""


class Writer:
    """Appends records and counts them."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.counts: dict[str, int] = {}

    def write(self, record: dict[str, Any]) -> None:
        """One record, one line."""
        self.out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
        kind = record["type"]
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def members(self, collection_id: str, kind: str, ids: Iterable[str]) -> int:
        """Member ids in lines of 1,000; how many were written."""
        total, batch = 0, []
        for member in ids:
            batch.append(member)
            if len(batch) == MEMBERS_PER_LINE:
                self.write({"type": "members", "collection": collection_id, "kind": kind, "ids": batch})
                total, batch = total + len(batch), []
        if batch:
            self.write({"type": "members", "collection": collection_id, "kind": kind, "ids": batch})
            total += len(batch)
        return total


def read(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records of an export, checked: a header first, an `end` whose counts match last."""
    counts: dict[str, int] = {}
    ended = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ArchiveError(f"line {number} is not JSON") from exc
        kind = record.get("type")
        if number == 1 and (kind != "header" or record.get("format") != FORMAT):
            raise ArchiveError("not a collections-hub export (no header)")
        if kind == "header" and record.get("version") != VERSION:
            raise ArchiveError(f"export version {record.get('version')} is not {VERSION}")
        if kind == "end":
            if record.get("counts") != counts:
                raise ArchiveError("the file's counts do not match its records (cut short or edited?)")
            ended = True
            continue
        counts[kind] = counts.get(kind, 0) + 1
        yield record
    if not ended:
        raise ArchiveError("the file ends without its `end` record (cut short?)")
