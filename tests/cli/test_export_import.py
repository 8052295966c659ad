"""`collections-hub export` then `import` into another hub, then export again: the same library."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from collections_hub.cli import main
from collections_hub.client import Hub, NotFound
from collections_hub.stack import EmbeddedStack
from collections_hub.transfer.export import Exporter
from tests.cli.seed import export_user, new_user, personal_library, seed

NODES = [f"node-{n:05d}" for n in range(2_500)]


def records(path: Path) -> list[dict[str, Any]]:
    """The file's records."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def comparable(path: Path, ids: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The records minus what an import cannot keep (docs/cli.md): collection ids (mapped through `ids`),
    timestamps, the export's own header and counts, and history (this hub records its own)."""
    kept = []
    for original in records(path):
        kind = original["type"]
        if kind in ("header", "end", "history"):
            continue
        record = {k: v for k, v in original.items() if k not in ("created_at", "updated_at")}
        if kind == "collection":
            record["id"] = (ids or {}).get(record["id"], record["id"])
        elif "collection" in record:
            record["collection"] = (ids or {}).get(record["collection"], record["collection"])
        kept.append(record)
    return kept


def test_export_import_export_round_trips(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Collections, node members, assets, models, thumbnail, visibility and shares survive the trip."""
    library = seed(remote, 3, with_models=True)
    with Hub(remote.gateway_url, api_key=library.key.key) as hub:
        personal = hub.project("personal", f"user-{library.owner.id}")
        personal.create("nodes box", members=NODES[:10], metadata={"k": "v"}, tags=["a"])
        personal.add_members("nodes box", NODES[10:])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    monkeypatch.setenv("HUB_ADMIN_API_KEY", remote.admin_api_key)
    url = ["--url", remote.gateway_url]
    assert main(["export", "--user", str(library.owner.id), "-o", str(first), *url, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert (exported["collections"], exported["members"]) == (4, 3 * 5 + len(NODES))
    assert exported["history"] > 0

    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    here = ["--url", stack.gateway_url]
    assert main(["import", str(first), "--owner-email", library.owner.email, *here, "--json"]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert (imported["collections"], imported["members"]) == (4, 3 * 5 + len(NODES))
    assert imported["items_remapped"] == {}  # every item id was free here
    assert imported["warnings"] == []
    # With the admin key at hand, every collection keeps its id (they are all free here).
    assert imported["collection_ids"] == {key: key for key in imported["collection_ids"]}

    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        owner = next(
            c for c in admin.collections.list() if c.id == imported["collection_ids"][records(first)[1]["id"]]
        )
    assert main(["export", "--user", owner.ownerId, "-o", str(second), *here]) == 0
    capsys.readouterr()

    assert comparable(second) == comparable(first)
    nodes = [r for r in records(second) if r["type"] == "members" and r["kind"] == "node"]
    assert [len(r["ids"]) for r in nodes] == [1000, 1000, 500]

    # A second import into the same hub finds every id taken: each collection gets a new one, reported.
    assert main(["import", str(first), "--api-key", stack.admin_api_key, *here, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["collections"] == 4
    assert all(new != old for old, new in again["collection_ids"].items())


def test_import_refuses_a_cut_short_file(
    stack: EmbeddedStack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without its closing counts is reported in one line with exit code 2, not a traceback."""
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"type":"header","format":"collections-hub/export","version":1,"scope":{"user":1}}\n')
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    assert main(["import", str(cut), "--url", stack.gateway_url]) == 2
    err = capsys.readouterr().err
    assert "cut short" in err
    assert "Traceback" not in err


def test_decimal_metadata_survives_export_and_import(
    stack: EmbeddedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A collection whose metadata holds 0.5 exports (no crash on the decimal) and imports as 0.5."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    owner, _ = personal_library(stack)
    path = tmp_path / "scored.jsonl"
    export_user(stack, owner.id, path)
    scored = next(r for r in records(path) if r["type"] == "collection" and r["name"] == "scored")
    assert scored["metadata"] == {"score": 0.5}

    dest, key = new_user(stack, "dest")
    assert main(["import", str(path), "--url", stack.gateway_url, "--api-key", key.key, "--json"]) == 0
    capsys.readouterr()
    with Hub(stack.gateway_url, api_key=key.key) as hub:
        assert hub.project("personal", f"user-{dest.id}").retrieve("scored").metadata == {"score": 0.5}


def test_a_collection_deleted_during_a_user_export_stops_it(stack: EmbeddedStack) -> None:
    """A collection deleted while a user's export runs stops the export with its 404, instead of leaving
    out the collections after it (or writing them without node members) and finishing as if complete."""
    owner, key = personal_library(stack)
    out = io.StringIO()
    with Hub(stack.gateway_url, api_key=key.key) as hub:
        ids = {c.id for c in hub.collections.list() if c.ownerId == str(owner.id)}

        def delete_the_rest(_members: int) -> None:
            written = {
                r["id"] for r in map(json.loads, out.getvalue().splitlines()) if r["type"] == "collection"
            }
            for cid in ids - written:
                hub.collections.delete(cid)

        with pytest.raises(NotFound):
            Exporter(hub, out, on_collection=delete_the_rest).run()
