"""The embedded stack's data directory is private: directories 0700, files 0600 at most, whatever the
umask of whoever starts it, and an older data directory readable by all is made private on start."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from pymongo import MongoClient

from collections_hub.servers import start_mongo, start_nats
from collections_hub.stack import EmbeddedStack, StackConfig


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a typical shell (0022: new files readable by all) while the test runs."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def readable_by_others(data_dir: Path) -> list[str]:
    """Everything under `data_dir` (itself included) with a group or other permission bit, and its mode."""
    found = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(data_dir.parent)} {stat.filemode(mode)}")
    return found


async def test_the_embedded_servers_write_private_files(tmp_path: Path, open_umask: None) -> None:
    """Started as `EmbeddedStack` starts them, nx-27017 and nats-server keep their stores, logs, config
    and pid file private, after a database file and a JetStream stream were written."""
    data_dir = tmp_path / ".hub-data"
    EmbeddedStack(StackConfig(data_dir=data_dir))  # creates the data dir and its secrets
    mongo, mongodb_url = start_mongo(data_dir)
    try:
        nats_server, nats_url = start_nats(data_dir)
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
            with client:
                client["modes"]["things"].insert_one({"name": "private"})
            connection = await nats.connect(nats_url)
            try:
                stream = connection.jetstream()
                await stream.add_stream(name="MODES", subjects=["modes.>"])
                await stream.publish("modes.one", b"private")
            finally:
                await connection.close()
        finally:
            nats_server.stop()
    finally:
        mongo.stop()
    assert list((data_dir / "mongo").iterdir()), "nx-27017 wrote no file"
    assert list((data_dir / "nats").rglob("*.blk")), "nats-server wrote no stream block"
    assert readable_by_others(data_dir) == []


def test_an_existing_data_dir_is_made_private_on_start(tmp_path: Path, open_umask: None) -> None:
    """Directories and files an earlier version left readable by all lose their group and other bits
    when the stack starts on them; what a symbolic link points at, outside, is left alone."""
    data_dir = tmp_path / ".hub-data"
    (data_dir / "mongo").mkdir(parents=True, mode=0o755)
    (data_dir / "mongo").chmod(0o755)
    (data_dir / "mongo" / "hub_catalog.sqlite").write_bytes(b"rows")
    (data_dir / "mongo" / "hub_catalog.sqlite").chmod(0o644)
    (data_dir / "secrets.json").write_text("{}")
    (data_dir / "secrets.json").chmod(0o644)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (data_dir / "link").symlink_to(outside)
    assert readable_by_others(data_dir) != []
    EmbeddedStack(StackConfig(data_dir=data_dir))
    assert readable_by_others(data_dir) == []
    assert stat.S_IMODE((data_dir / "mongo").stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "mongo" / "hub_catalog.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
