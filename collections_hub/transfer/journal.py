"""The migration's state file: an append-only journal of JSON lines, replayed on start.

Each finished step appends one line and flushes it, so a step costs the same however much was copied
before, and a run stopped at any point (Ctrl-C, a network failure, kill -9) leaves a journal whose last
complete line says exactly what was done. A torn last line (killed mid-write) is ignored, and cut off
before the next append so that line starts clean. The first line names the source and the destination
(`start`: hub URL and owning user): a journal is never continued for another source or destination.
Journals written before the destination was recorded name only the source and are continued for any.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class Progress:
    """What is known about one source collection."""

    dest_id: str | None = None
    steps: set[str] = field(default_factory=set)
    intent_since: str | None = None  # a create was sent at this time; its answer may have been lost


class JournalError(ValueError):
    """The state file belongs to another migration, or is not a journal."""


class Journal:
    """Replays the state file, then appends to it."""

    def __init__(self, path: Path, source: str, dest: str | None = None) -> None:
        self.path, self.source, self.dest = path, source, dest
        self.collections: dict[str, Progress] = {}
        self.items: dict[str, str] = {}  # "asset:<source id>" -> destination id
        self.started = False  # the `start` line is written
        self._complete = 0  # bytes of complete lines: the next append starts there
        self._file: IO[str] | None = None
        if path.exists():
            self._replay()

    def _replay(self) -> None:
        with self.path.open("rb") as file:
            for number, line in enumerate(file, 1):
                if not line.endswith(b"\n"):
                    return  # a torn last line
                try:
                    self._apply(json.loads(line))
                except JournalError:
                    raise
                except (ValueError, KeyError, TypeError) as exc:
                    raise JournalError(
                        f"{self.path} line {number} is not a migration journal record"
                    ) from exc
                self._complete += len(line)

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record["op"]
        if kind == "start" and record["source"] != self.source:
            raise JournalError(f"{self.path} records a migration from {record['source']}, not {self.source}")
        recorded = record.get("dest")
        if kind == "start" and recorded is not None and self.dest is not None and recorded != self.dest:
            raise JournalError(f"{self.path} records a migration into {recorded}, not {self.dest}")
        if kind == "start":
            self.started = True
            return
        if kind == "item":
            self.items[record["key"]] = record["dest"]
            return
        progress = self.collections.setdefault(record["source_id"], Progress())
        if kind == "intent":
            progress.intent_since = record["since"]
        elif kind == "created":
            progress.dest_id = record["dest"]
            progress.intent_since = None
        else:
            progress.steps.add(record["step"])

    def append(self, record: dict[str, Any]) -> None:
        """Record one finished step (applied to the in-memory state too); the first names both ends."""
        if not self.started:
            start = {"op": "start", "source": self.source}
            self._write(start if self.dest is None else {**start, "dest": self.dest})
        self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
            self._file.truncate(self._complete)  # a torn last line goes; append mode writes at the end
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        # Flushed, not fsynced: a killed process loses nothing the OS holds; a power cut may lose a line,
        # which a rerun repairs (every step is safe to repeat).
        self._file.flush()
        self._apply(record)

    def progress(self, source_id: str) -> Progress:
        """The progress of one source collection."""
        return self.collections.setdefault(source_id, Progress())

    def mapped_dest_ids(self) -> set[str]:
        """Destination collections some source collection already maps to."""
        return {p.dest_id for p in self.collections.values() if p.dest_id}

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
