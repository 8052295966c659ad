"""Both ends of `collections-hub migrate` (issue 23): the state file is keyed by the destination too, and
a lost connection names the end it was lost to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collections_hub.cli import main, state_file
from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from collections_hub.transfer.journal import Journal, JournalError
from tests.cli.copies import owned
from tests.cli.seed import new_user, seed


def migrate_args(source: str, dest: str, key: str, dest_key: str) -> list[str]:
    """A dialect B migration from `source` into `dest`, reported as JSON."""
    return [
        "migrate", "--from", source, "--dialect", "b", "--api-key", key,
        "--url", dest, "--to-api-key", dest_key, "--json",
    ]  # fmt: skip


def test_the_same_source_into_another_user_is_copied_again(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A second user here gets every collection too (not "copied before (skipped)"), from a state file of
    its own, which the report names."""
    library = seed(remote, 2, items=1)
    _, first_key = new_user(stack, "dest")
    _, second_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    reports = []
    for dest_key in (first_key, second_key):
        assert main(migrate_args(remote.gateway_url, stack.gateway_url, library.key.key, dest_key.key)) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert [(r["copied"], r["already_done"]) for r in reports] == [(2, 0), (2, 0)]
    assert sorted(owned(stack.gateway_url, second_key.key)) == sorted(library.collections)
    first_state, second_state = (Path(r["state_file"]) for r in reports)
    assert first_state != second_state
    assert first_state.parent == second_state.parent == tmp_path / "migrations"
    assert second_state.exists()

    assert main(migrate_args(remote.gateway_url, stack.gateway_url, library.key.key, second_key.key)) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["copied"], again["already_done"], again["state_file"]) == (0, 2, str(second_state))


def test_a_state_file_of_another_destination_is_refused(tmp_path: Path) -> None:
    """A journal started for one hub and user is not continued for another: its collections are not there."""
    state, source = tmp_path / "state.jsonl", "https://hosted.example"
    first = Journal(state, source, "http://hub-a:8080 user 7")
    first.append({"op": "item", "key": "asset:a", "dest": "a"})
    first.close()
    assert Journal(state, source, "http://hub-a:8080 user 7").items == {"asset:a": "a"}
    with pytest.raises(JournalError, match="http://hub-a:8080 user 7, not http://hub-b:8080 user 7"):
        Journal(state, source, "http://hub-b:8080 user 7")


def test_a_state_file_named_before_destinations_counted_is_not_guessed_at(
    stack: EmbeddedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A default state file keyed by source, dialect and key only (older versions): exit 2 telling which
    --state to pass, before the source is read (it is down here) or anything copied."""
    source = f"http://127.0.0.1:{free_port()}"
    _, dest_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    legacy = state_file(source, "b", "source-key")
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"op": "start", "source": source}) + "\n")
    assert main(migrate_args(source, stack.gateway_url, "source-key", dest_key.key)) == 2
    err = capsys.readouterr().err
    assert f"--state {legacy}" in err
    assert "cannot reach" not in err


@pytest.mark.parametrize("down", ["source", "destination"])
def test_an_unreachable_end_is_named_alone(
    down: str,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--from` (or `--url`) where nothing listens: exit 3, and the error names that URL and not the other."""
    dead = f"http://127.0.0.1:{free_port()}"
    _, dest_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    source, dest = (dead, stack.gateway_url) if down == "source" else (stack.gateway_url, dead)
    assert main(migrate_args(source, dest, dest_key.key, dest_key.key)) == 3
    err = capsys.readouterr().err
    up = stack.gateway_url
    assert f"cannot reach {dead}:" in err
    assert up not in err
    assert len(err.strip().splitlines()) == 1
