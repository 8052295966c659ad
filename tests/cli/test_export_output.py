"""Where `collections-hub export` writes (issue 23): refused before any work when it cannot, and never a
truncated file left behind when the export fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from collections_hub.cli import main
from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from collections_hub.transfer.export import partial_file


def dead_url() -> str:
    """A URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def test_an_output_in_a_missing_directory_is_a_usage_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o /missing-dir/x`: exit 2 naming the directory, no bars and no call (the hub here is down)."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", "k")
    missing = tmp_path / "missing-dir"
    assert main(["export", "--project", "a/b", "-o", str(missing / "x"), "--url", dead_url()]) == 2
    err = capsys.readouterr().err
    assert f"directory {missing} does not exist" in err
    assert "cannot reach" not in err
    assert "members" not in err  # no progress bar (collections, members) was drawn
    assert not missing.exists()


def test_an_export_with_the_hub_down_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unreachable hub after the header is written: exit 3, and neither the file nor a partial one stays."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", "k")
    out = tmp_path / "out.jsonl"
    assert main(["export", "--project", "a/b", "-o", str(out), "--url", dead_url()]) == 3
    assert "cannot reach" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_refused_export_keeps_the_earlier_file_as_it_was(
    stack: EmbeddedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 404 mid-export (missing project): exit 1, and an earlier export at that path is not truncated."""
    monkeypatch.setenv("HUB_ADMIN_API_KEY", stack.admin_api_key)
    out = tmp_path / "out.jsonl"
    out.write_text("an earlier export\n")
    assert main(["export", "--project", "nope/nothing", "-o", str(out), "--url", stack.gateway_url]) == 1
    assert "404" in capsys.readouterr().err
    assert out.read_text() == "an earlier export\n"
    assert list(tmp_path.iterdir()) == [out]


def test_an_interrupted_export_leaves_no_file(tmp_path: Path) -> None:
    """Ctrl-C while writing: the partial file is removed, nothing appears at the path."""

    def interrupted_export() -> None:
        """Writes the header, then is interrupted."""
        with partial_file(tmp_path / "out.jsonl") as file:
            file.write('{"type":"header"}\n')
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_export()
    assert list(tmp_path.iterdir()) == []


def test_a_finished_export_is_a_plain_file_at_the_path(tmp_path: Path) -> None:
    """On success the written text is at the path, readable as any new file, with no leftovers."""
    out = tmp_path / "out.jsonl"
    with partial_file(out) as file:
        file.write("done\n")
    assert out.read_text() == "done\n"
    assert out.stat().st_mode & 0o644 == 0o644
    assert list(tmp_path.iterdir()) == [out]


def test_import_help_says_ids_are_kept_where_free(capsys: pytest.CaptureFixture[str]) -> None:
    """`import --help` matches the importer: collection and item ids are kept where free, not always new."""
    assert main(["import", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "collection and item ids kept where free" in text
    assert "ids are new" not in text
