"""The end of a migration (issue 23): one table of what was created, adopted, skipped and failed per kind,
and one warning line for shares not restored, however many there were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collections_hub.cli import main
from collections_hub.client import Hub
from collections_hub.stack import EmbeddedStack
from tests.cli.seed import new_user, seed


def migrate_args(remote: EmbeddedStack, stack: EmbeddedStack, key: str, dest_key: str) -> list[str]:
    """A dialect B migration from `remote` into `stack`."""
    return [
        "migrate", "--from", remote.gateway_url, "--dialect", "b", "--api-key", key,
        "--url", stack.gateway_url, "--to-api-key", dest_key,
    ]  # fmt: skip


def test_a_second_copy_of_a_shared_library_is_summed_up_per_kind(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Into a second user here the items and the group are adopted (already here), a user whose account
    exists here fails once however many collections share with them, and one warning covers every share
    not restored; a rerun shows everything skipped in the table."""
    library = seed(remote, 3, items=2)
    colleague, _ = new_user(remote, "colleague")
    with Hub(remote.gateway_url, api_key=library.key.key) as hub:
        for spec in library.collections.values():
            hub.sharing.add_user(str(spec["id"]), colleague.id)
    _, first_key = new_user(stack, "dest")
    _, second_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    reports = []
    for dest_key in (first_key, second_key):
        assert main([*migrate_args(remote, stack, library.key.key, dest_key.key), "--json"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    first, second = (r["outcomes"] for r in reports)
    assert first["collections"] == second["collections"] == {
        "created": 3, "adopted": 0, "skipped": 0, "failed": 0
    }  # fmt: skip
    assert first["assets"] == {"created": 6, "adopted": 0, "skipped": 0, "failed": 0}
    assert second["assets"] == {"created": 0, "adopted": 6, "skipped": 0, "failed": 0}
    assert (first["groups"], second["groups"]) == (
        {"created": 1, "adopted": 0, "skipped": 0, "failed": 0},
        {"created": 0, "adopted": 1, "skipped": 0, "failed": 0},
    )
    # The friend, the guest and the colleague: made here by the first copy, so taken for the second.
    assert (first["users"], second["users"]) == (
        {"created": 3, "adopted": 0, "skipped": 0, "failed": 0},
        {"created": 0, "adopted": 0, "skipped": 0, "failed": 3},
    )
    assert sum("colleague" in line for line in reports[1]["unshared"]) == 3  # each collection, counted once
    assert reports[1]["warnings"] == [
        "5 shares not restored (3 users, 0 groups failed): listed under `unshared` by --json"
    ]

    assert main(migrate_args(remote, stack, library.key.key, second_key.key)) == 0
    table = capsys.readouterr().out
    assert "collections" in table
    assert "0 created, 0 adopted, 3 skipped, 0 failed" in table
    assert "registry items created" not in table
