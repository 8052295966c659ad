"""`collections-hub migrate` from a second stack standing in for a hosted B or C service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collections_hub.cli import main
from collections_hub.client import Hub
from collections_hub.stack import EmbeddedStack
from collections_hub.transfer.journal import Journal
from tests.cli.copies import owned, without_ids
from tests.cli.seed import new_user, seed


def migrate_args(
    remote: EmbeddedStack, stack: EmbeddedStack, dialect: str, key: str, dest_key: str
) -> list[str]:
    """The command line of one migration into the session stack."""
    return [
        "migrate", "--from", remote.gateway_url, "--dialect", dialect, "--api-key", key,
        "--url", stack.gateway_url, "--to-api-key", dest_key, "--json",
    ]  # fmt: skip


def done_lines(state: Path) -> int:
    """Collections the journal records as finished."""
    if not state.exists():
        return 0
    return state.read_text().count('"step":"done"')


def test_migrate_from_b_killed_halfway_then_rerun_copies_everything_once(
    remote: EmbeddedStack, stack: EmbeddedStack, tmp_path: Path
) -> None:
    """kill -9 mid-run, rerun: every collection, asset, public flag and share arrives, none twice."""
    library = seed(remote, 10)
    source = owned(remote.gateway_url, library.key.key)
    _, dest_key = new_user(stack, "dest")
    state = tmp_path / "state.jsonl"
    args = [*migrate_args(remote, stack, "b", library.key.key, dest_key.key), "--state", str(state)]
    env = {**os.environ, "HUB_ADMIN_API_KEY": stack.admin_api_key, "HUB_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "collections_hub.cli", *args]

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while done_lines(state) < 4 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL, "the first run finished before the fault"
    assert 4 <= done_lines(state) < 10

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["already_done"] >= 4
    assert report["copied"] + report["already_done"] == 10
    assert report["failed"] == {}

    copy = owned(stack.gateway_url, dest_key.key)
    # Dialect B shows no thumbnail, so the copy has the hub's default (its first asset); all else matches.
    assert without_ids(copy, "thumbnail") == without_ids(source, "thumbnail")  # nothing doubled or lost
    first_box = copy[next(iter(library.collections))]
    assert first_box["public"]
    assert first_box["users"] == sorted([(library.friend, "user"), (library.guest, "guest")])
    assert first_box["groups"] == [library.group]

    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (json.loads(third.stdout)["already_done"], json.loads(third.stdout)["copied"]) == (10, 0)
    assert len(owned(stack.gateway_url, dest_key.key)) == 10


def test_migrate_from_c_with_key_id_and_secret_maps_taken_item_ids(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Dialect C through a rate-limited source: names, assets, models, thumbnails; a taken id is remapped."""
    library = seed(remote, 4, with_models=True)
    _, dest_key = new_user(stack, "dest")
    taken = library.collections[next(iter(library.collections))]["assets"][0]  # type: ignore[index]
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        admin.assets.create("somebody else's", id=str(taken))
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    basic = f"{library.key.key_id}:{library.key.secret}"

    assert main(migrate_args(remote, stack, "c", basic, dest_key.key)) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["copied"], report["members"]) == (4, 4 * 5)
    assert list(report["items_remapped"]) == [f"asset:{taken}"]

    copy = owned(stack.gateway_url, dest_key.key)
    source = owned(remote.gateway_url, library.key.key)
    assert sorted(copy) == sorted(source)
    for title, spec in source.items():
        assets = [report["items_remapped"].get(f"asset:{a}", a) for a in spec["assets"]]
        assert copy[title]["assets"] == sorted(assets)
        assert copy[title]["models"] == spec["models"]
        assert copy[title]["thumbnail"] == report["items_remapped"].get(
            f"asset:{spec['thumbnail']}", spec["thumbnail"]
        )
    assert list((tmp_path / "migrations").iterdir()), "the default state file lives in HUB_DATA_DIR"


def test_dry_run_lists_the_plan_and_writes_nothing(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--dry-run reads the source, prints each collection with its counts, and creates nothing."""
    library = seed(remote, 2, items=2)
    _, dest_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    assert main([*migrate_args(remote, stack, "b", library.key.key, dest_key.key), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert [(row["name"], row["assets"], row["public"]) for row in plan] == [
        (title, 2, n == 0) for n, title in enumerate(library.collections)
    ]
    assert owned(stack.gateway_url, dest_key.key) == {}
    assert not (tmp_path / "migrations").exists()


def test_a_journal_line_torn_by_a_kill_is_cut_before_the_rerun_appends(tmp_path: Path) -> None:
    """kill -9 mid-write leaves half a line: the rerun's own progress is still known to the run after it
    (it is not written onto the fragment and lost, which would make a third run copy it again)."""
    state, source = tmp_path / "state.jsonl", "https://hosted.example"
    first = Journal(state, source)
    first.append({"op": "item", "key": "asset:a", "dest": "a"})
    first.close()
    with state.open("a", encoding="utf-8") as file:
        file.write('{"op":"item","key":"asset:b","de')  # killed here
    rerun = Journal(state, source)
    assert rerun.items == {"asset:a": "a"}
    rerun.append({"op": "item", "key": "asset:c", "dest": "c"})
    rerun.close()
    assert Journal(state, source).items == {"asset:a": "a", "asset:c": "c"}


def test_a_state_file_of_another_source_is_refused(
    remote: EmbeddedStack,
    stack: EmbeddedStack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--state` of a migration from elsewhere: one line naming both sources, exit 2, nothing copied."""
    state = tmp_path / "state.jsonl"
    elsewhere = Journal(state, "https://elsewhere.example")
    elsewhere.append({"op": "item", "key": "asset:a", "dest": "a"})
    elsewhere.close()
    library = seed(remote, 1, items=1)
    _, dest_key = new_user(stack, "dest")
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    args = [*migrate_args(remote, stack, "b", library.key.key, dest_key.key), "--state", str(state)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "https://elsewhere.example" in err
    assert remote.gateway_url in err
    assert len(err.strip().splitlines()) == 1
    assert owned(stack.gateway_url, dest_key.key) == {}
