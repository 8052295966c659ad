"""The embedded infrastructure: nats-server (JetStream) and nx-27017, each on a free loopback port."""

from __future__ import annotations

from pathlib import Path

from collections_hub.processes import (
    ManagedProcess,
    free_port,
    port_open,
    private_dir,
    venv_binary,
    write_private_text,
)

# JetStream as production runs it, where it applies to one node: file storage, fsync on every write.
NATS_CONFIG = """\
listen: 127.0.0.1:{port}
server_name: hub-embedded
jetstream {{
  store_dir: "{store_dir}"
  sync_interval: {sync_interval}
}}
"""


def start_nats(
    data_dir: Path, port: int | None = None, *, sync_interval: str = "always"
) -> tuple[ManagedProcess, str]:
    """Start nats-server with JetStream storing under `data_dir/nats`; return it and its URL."""
    port = port or free_port()
    store = private_dir(data_dir / "nats")
    config = data_dir / "nats.conf"
    write_private_text(config, NATS_CONFIG.format(port=port, store_dir=store, sync_interval=sync_interval))
    proc = ManagedProcess(
        "nats-server", [venv_binary("nats-server"), "-c", str(config)], data_dir / "logs" / "nats.log"
    )
    proc.start().wait_until(lambda: port_open("127.0.0.1", port))
    return proc, f"nats://127.0.0.1:{port}"


def start_mongo(data_dir: Path, port: int | None = None) -> tuple[ManagedProcess, str]:
    """Start nx-27017 with one SQLite file per database under `data_dir/mongo`; return it and its URL."""
    port = port or free_port()
    store = private_dir(data_dir / "mongo")
    argv = [
        venv_binary("nx-27017"),
        "--data-dir",
        str(store),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--pid-file",
        str(data_dir / "nx-27017.pid"),
        "--log-file",
        str(data_dir / "logs" / "nx-27017.server.log"),
    ]
    proc = ManagedProcess("nx-27017", argv, data_dir / "logs" / "nx-27017.log")
    proc.start().wait_until(lambda: port_open("127.0.0.1", port))
    return proc, f"mongodb://127.0.0.1:{port}"
