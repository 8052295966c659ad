"""The export file: JSON Lines, one record a line, written and read as a stream.

Records, in file order, per collection: `collection`, then `members` (node ids, 1,000 a line), then
`item` (each linked asset/model's registry entry) and `members` of kind asset/model, then `share` and
`group_share`, then `history` (newest first). The file opens with `header` and closes with `end` (counts,
so a truncated file is detected). An import reads the whole file through `checked` before it writes
anything, so a file cut short or damaged anywhere imports nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
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


# The keys each record must carry, and their types (others are optional and read with a default).
REQUIRED: dict[str, dict[str, type[Any]]] = {
    "header": {"format": str, "version": int, "scope": dict},
    "collection": {"id": str, "name": str},
    "members": {"collection": str, "kind": str, "ids": list},
    "item": {"kind": str, "id": str, "name": str},
    "share": {"collection": str, "email": str, "role": str},
    "group_share": {"collection": str, "name": str, "members": list},
    "history": {"collection": str},
    "end": {"counts": dict},
}


def read(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records of an export, checked as they come: each line a record `REQUIRED` knows, the header
    first, a record naming a collection inside that collection, and an `end` whose counts match last.
    A fault is raised when its line is reached: `checked` reads the whole file before the first record."""
    counts: dict[str, int] = {}
    collection: str | None = None
    ended = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if ended:
            raise ArchiveError(f"line {number}: a record after the `end` record")
        record = _record(number, line, first=not counts)  # nothing counted yet: the first record
        kind = record["type"]
        if kind == "end":
            if record["counts"] != counts:
                raise ArchiveError("the file's counts do not match its records (cut short or edited?)")
            ended = True
            continue
        if kind == "collection":
            collection = record["id"]
        elif "collection" in REQUIRED[kind] and record["collection"] != collection:
            raise ArchiveError(f"line {number}: a `{kind}` record outside its collection")
        counts[kind] = counts.get(kind, 0) + 1
        yield record
    if not ended:
        raise ArchiveError("the file ends without its `end` record (cut short?)")


def _record(number: int, line: str, *, first: bool) -> dict[str, Any]:
    """One line as a record of a known type with its required keys; the header on the first record only."""
    try:
        parsed = json.loads(line)
    except ValueError as exc:
        raise ArchiveError(f"line {number} is not JSON") from exc
    record: dict[str, Any] = parsed if isinstance(parsed, dict) else {}  # `[]`, `7`: no type
    kind = record.get("type")
    if first and (kind != "header" or record.get("format") != FORMAT):
        raise ArchiveError("not a collections-hub export (no header)")
    if not isinstance(kind, str) or kind not in REQUIRED:
        raise ArchiveError(f"line {number} is not a record of an export")
    if kind == "header" and not first:
        raise ArchiveError(f"line {number}: a second header")
    if kind == "header" and record.get("version") != VERSION:
        raise ArchiveError(f"export version {record.get('version')} is not {VERSION}")
    for key, expected in REQUIRED[kind].items():
        if not isinstance(record.get(key), expected):
            raise ArchiveError(f"line {number}: a `{kind}` record without its `{key}` ({expected.__name__})")
    return record


def checked(file: IO[str]) -> Iterator[dict[str, Any]]:
    """The records of a file read through and checked whole before the first is given, so a file cut
    short or damaged anywhere is refused before anything is written. A pipe is spooled to disk first."""
    with ExitStack() as resources:
        if not file.seekable():
            spool = resources.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
            shutil.copyfileobj(file, spool)
            spool.seek(0)
            file = spool
        start = file.tell()
        for _ in read(file):
            pass
        file.seek(start)
        yield from read(file)
