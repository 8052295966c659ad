"""`collections-hub import` of a file it must refuse: checked whole before anything is written, one line on
stderr, exit 2; and what Ctrl-C half-way through says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collections_hub.cli import main
from collections_hub.client import Hub
from collections_hub.stack import EmbeddedStack
from collections_hub.transfer.importer import Importer
from tests.cli.seed import export_user, new_user, personal_library

HEADER = '{"type":"header","format":"collections-hub/export","version":1,"scope":{"user":1}}'
COLLECTION = '{"type":"collection","id":"c1","name":"hostile"}'
NODES = '{"type":"members","collection":"c1","kind":"node","ids":["n"]}'


def end(**counts: int) -> str:
    """An `end` record with these counts."""
    return json.dumps({"type": "end", "counts": counts})


HOSTILE = {
    "a list, not a record": [HEADER, COLLECTION, "[]", end(header=1, collection=1)],
    "a number, not a record": [HEADER, COLLECTION, "7", end(header=1, collection=1)],
    "an unknown type": [HEADER, COLLECTION, '{"type":"surprise"}', end(header=1, collection=1, surprise=1)],
    "a collection without its id": [HEADER, COLLECTION, '{"type":"collection"}', end(header=1, collection=2)],
    "members before their collection": [HEADER, NODES, COLLECTION, end(header=1, members=1, collection=1)],
    "a record after the end": [HEADER, COLLECTION, end(header=1, collection=1), COLLECTION],
    "a blank first line, no header": ["", COLLECTION, end(collection=1)],
}


def import_as_new_user(stack: EmbeddedStack, path: Path) -> tuple[int, str]:
    """Import `path` as a fresh user: (exit code, that user's key)."""
    _, key = new_user(stack, "dest")
    code = main(["import", str(path), "--url", stack.gateway_url, "--api-key", key.key, "--json"])
    return code, key.key


def collections_of(stack: EmbeddedStack, key: str) -> list[str]:
    """The names of the collections the key's user owns."""
    with Hub(stack.gateway_url, api_key=key) as hub:
        me = str(hub.me().user_id)
        return [c.name for c in hub.collections.list() if c.ownerId == me]


@pytest.fixture
def exported(
    stack: EmbeddedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """The lines of a real user export (two collections); the admin key is at hand for imports."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    owner, _ = personal_library(stack)
    export_user(stack, owner.id, tmp_path / "full.jsonl")
    capsys.readouterr()
    return (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)


def test_a_file_cut_after_a_collection_imports_nothing(
    stack: EmbeddedStack, tmp_path: Path, exported: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A real export cut short after its second `collection` record: exit 2, and the target has no new
    collection (the first one is not imported either, so a rerun with the whole file duplicates nothing)."""
    starts = [n for n, line in enumerate(exported) if json.loads(line)["type"] == "collection"]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(exported[: starts[1] + 1]))
    code, key = import_as_new_user(stack, cut)
    assert code == 2
    assert "cut short" in capsys.readouterr().err
    assert collections_of(stack, key) == []


@pytest.mark.parametrize("lines", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_malformed_file_is_one_line_exit_2_and_imports_nothing(
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
) -> None:
    """A hostile or damaged file: one line on stderr naming the fault, exit 2, no traceback, nothing made."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    code, key = import_as_new_user(stack, path)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert collections_of(stack, key) == []


def test_ctrl_c_during_an_import_says_a_rerun_makes_copies(
    stack: EmbeddedStack,
    tmp_path: Path,
    exported: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C once collections are made: exit 130, how many were made, and the warning that a rerun
    creates copies; never "run the same command again to continue"."""

    def interrupt(_importer: Importer, _record: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Importer, "_on_members", interrupt)
    path = tmp_path / "full.jsonl"
    path.write_text("".join(exported))
    code, key = import_as_new_user(stack, path)
    err = capsys.readouterr().err
    made = collections_of(stack, key)
    assert code == 130
    assert "scored" in made  # the collection whose node members were being added
    assert f"after creating {len(made)} collection(s)" in err
    assert "as copies" in err
    assert "continue" not in err
