"""Dialect A's list, read in constant memory: each page is spooled to disk and parsed as a stream, and
each collection's members go to a spool file of their own, so a member list of any length never sits in
memory (the page's other fields are small)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson

from collections_hub.client import Hub
from collections_hub.client.ops import list_project

MEMBERS = "collections.item.members"


@dataclass
class SpooledCollection:
    """A collection's fields (members left empty) and a file of its member ids, one a line."""

    fields: dict[str, Any]
    spool: IO[str]
    count: int

    def members(self) -> Iterator[str]:
        """The member ids, in order."""
        self.spool.seek(0)
        for line in self.spool:
            yield line.rstrip("\n")


def _parse(raw: IO[bytes]) -> Iterator[SpooledCollection | int]:
    """The page's collections, then its `totalPages`."""
    builder: Any = None
    spool: IO[str] | None = None
    count = 0
    # Numbers as float, not ijson's default Decimal (which json.dumps refuses): the hub wrote them from
    # floats, so the value is the same; integers stay int (MongoDB holds at most 64 bits, as ijson here).
    for prefix, event, value in ijson.parse(raw, use_float=True):
        if builder is None:
            if prefix == "collections.item" and event == "start_map":
                builder, count = ijson.ObjectBuilder(), 0
                # Closed by project_collections once the collection has been written out.
                spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
                builder.event(event, value)
            elif prefix == "totalPages":
                yield int(value)
            continue
        if prefix == f"{MEMBERS}.item":
            assert spool is not None
            spool.write(f"{value}\n")
            count += 1
            continue
        builder.event(event, value)
        if prefix == "collections.item" and event == "end_map":
            assert spool is not None
            yield SpooledCollection(builder.value, spool, count)
            builder = None


def project_collections(hub: Hub, base: str, page_size: int = 50) -> Iterator[SpooledCollection]:
    """Every collection of a project, page by page, members spooled."""
    page = 1
    while True:
        total_pages = 0
        with tempfile.TemporaryFile() as raw:
            hub.transport.stream_to(list_project(base, page_size, str(page)), raw)
            for parsed in _parse(raw):
                if isinstance(parsed, int):
                    total_pages = parsed
                    continue
                with parsed.spool:
                    yield parsed
        if page >= total_pages:
            return
        page += 1
