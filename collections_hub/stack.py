"""The embedded stack: infrastructure (unless given URLs), the three services and the gateway as children."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from collections_hub.processes import ManagedProcess, free_port, http_ok, make_private, private_dir
from collections_hub.servers import start_mongo, start_nats
from collections_hub.supervisor import RestartPolicy

SERVICES = ("access_service", "catalog_service", "history_service")


@dataclass
class StackConfig:
    """What the stack needs; URLs left empty mean "start our own server"."""

    data_dir: Path
    port: int = 8080
    mongodb_url: str | None = None
    nats_url: str | None = None
    admin_api_key: str | None = None
    jwt_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str = "collections-hub"
    database_prefix: str = "hub"
    nats_sync_interval: str = "always"
    log_level: str = "INFO"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Extra processes of a service: the gateway takes them in turn; history replicas share one consumer.
    replicas: dict[str, int] = field(default_factory=dict)
    # Used only by `collections-hub up`, which supervises; an EmbeddedStack alone never restarts a child.
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)

    @classmethod
    def from_env(cls, port: int | None, data_dir: str | None) -> StackConfig:
        """Configuration from `HUB_*`, `MONGODB_URL` and `NATS_URL`, with command-line overrides."""
        env = os.environ
        return cls(
            data_dir=Path(data_dir or env.get("HUB_DATA_DIR", ".hub-data")).resolve(),
            port=port or int(env.get("HUB_PORT", "8080")),
            mongodb_url=env.get("MONGODB_URL") or env.get("HUB_MONGODB_URL") or None,
            nats_url=env.get("NATS_URL") or env.get("HUB_NATS_URL") or None,
            admin_api_key=env.get("HUB_ADMIN_API_KEY") or None,
            jwt_secret=env.get("HUB_JWT_SECRET") or None,
            jwt_issuer=env.get("HUB_JWT_ISSUER") or None,
            jwt_audience=env.get("HUB_JWT_AUDIENCE", "collections-hub"),
            log_level=env.get("HUB_LOG_LEVEL", "INFO"),
            restart_policy=RestartPolicy.from_env(env),
        )


def module_of(process_name: str) -> str:
    """The service a process runs: `catalog_service#2` is a second replica of `catalog_service`."""
    return process_name.partition("#")[0]


# Each secret's random bytes; a secrets.json written before a secret existed gets it on the next start.
SECRET_BYTES = {
    "admin_api_key": 32,
    "jwt_secret": 48,
    # Signs what must stay valid across restarts (pagination cursors), and authenticates internal calls.
    "internal_secret": 32,
}


def write_private_json(path: Path, content: object) -> None:
    """Replace `path` atomically with JSON readable by its owner only (a reader never sees half a file)."""
    private_dir(path.parent)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
    partial.replace(path)


def persistent_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets generated once per data dir (admin key, JWT and internal secrets), kept across restarts."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = {name: secrets.token_urlsafe(size) for name, size in SECRET_BYTES.items() if name not in stored}
    if missing:
        stored = {**stored, **missing}
        write_private_json(path, stored)
    return stored


class EmbeddedStack:
    """Starts everything in order, and stops everything in reverse, leaving no process behind."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        # Everything the stack and its children write there is private (`PRIVATE_UMASK`), and so is
        # whatever an earlier version left readable by all.
        make_private(config.data_dir)
        stored = persistent_secrets(config.data_dir)
        self.admin_api_key = config.admin_api_key or stored["admin_api_key"]
        self.jwt_secret = config.jwt_secret or stored["jwt_secret"]
        self.internal_secret = stored["internal_secret"]
        self.infrastructure: list[ManagedProcess] = []
        self.services: dict[str, ManagedProcess] = {}
        self.service_urls: dict[str, str] = {}
        self.mongodb_url = config.mongodb_url or ""
        self.nats_url = config.nats_url or ""

    @property
    def gateway_url(self) -> str:
        """Where callers reach the stack."""
        return f"http://127.0.0.1:{self.config.port}"

    def start(self) -> None:
        """Start infrastructure, then services, then the gateway; return once all are ready."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        data_dir = self.config.data_dir
        if not self.nats_url:
            proc, self.nats_url = start_nats(data_dir, sync_interval=self.config.nats_sync_interval)
            self.infrastructure.append(proc)
        if not self.mongodb_url:
            proc, self.mongodb_url = start_mongo(data_dir)
            self.infrastructure.append(proc)
        # Every service learns every peer's URL, so all ports are chosen before any process starts.
        for name in SERVICES:
            self.service_urls.setdefault(name, f"http://127.0.0.1:{free_port()}")
            for n in range(2, self.config.replicas.get(name, 1) + 1):
                self.service_urls.setdefault(f"{name}#{n}", f"http://127.0.0.1:{free_port()}")
        for name in SERVICES:
            self.start_service(name)
            for n in range(2, self.config.replicas.get(name, 1) + 1):
                self.start_service(f"{name}#{n}")
        for name in self.services:
            self.wait_ready(name)
        self.start_service("gateway", port=self.config.port)
        self.wait_ready("gateway")
        self.record_state()

    def service_env(self, name: str, port: int) -> dict[str, str]:
        """The environment of one service process."""
        short = module_of(name).removesuffix("_service")
        env = {
            "HUB_SERVICE_NAME": module_of(name),
            "HUB_HOST": "127.0.0.1",
            "HUB_PORT": str(port),
            "HUB_MONGODB_URL": self.mongodb_url,
            "HUB_MONGO_DATABASE": f"{self.config.database_prefix}_{short}",
            "HUB_MONGO_WRITE_CONCERN": "1",
            "HUB_NATS_URL": self.nats_url,
            "HUB_INTERNAL_SECRET": self.internal_secret,
            "HUB_LOG_LEVEL": self.config.log_level,
            "HUB_ADMIN_API_KEY": self.admin_api_key,
            "HUB_JWT_SECRET": self.jwt_secret,
            "HUB_JWT_AUDIENCE": self.config.jwt_audience,
            "PYTHONUNBUFFERED": "1",
            # Durable consumers belong to the database they feed, so stacks sharing one NATS server
            # (tests, benchmarks) never take each other's events.
            "HUB_CONSUMER_DURABLE": f"{self.config.database_prefix}_history",
            "HUB_VISIBILITY_DURABLE": f"{self.config.database_prefix}_catalog_visibility",
            "HUB_FACTS_DURABLE": f"{self.config.database_prefix}_catalog_visibility_facts",
        }
        if self.config.jwt_issuer:
            env["HUB_JWT_ISSUER"] = self.config.jwt_issuer
        for service in SERVICES:
            env[f"HUB_{service.removesuffix('_service').upper()}_URL"] = ",".join(self.replica_urls(service))
        return {**env, **self.config.extra_env}

    def replica_urls(self, service: str) -> list[str]:
        """Base URLs of every running process of a service (the primary first)."""
        return [url for name, url in self.service_urls.items() if module_of(name) == service]

    def start_service(self, name: str, port: int | None = None) -> ManagedProcess:
        """Start (or restart) one service process on its port; `name#2` is a second replica of `name`."""
        if port is None:
            previous = self.service_urls.get(name)
            port = int(previous.rsplit(":", 1)[1]) if previous else free_port()
        self.service_urls[name] = f"http://127.0.0.1:{port}"
        module = module_of(name)
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", module],
            self.config.data_dir / "logs" / f"{name.replace('#', '-')}.log",
            env=self.service_env(name, port),
        )
        self.services[name] = proc.start()
        return proc

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Wait until the service's `/readyz` answers 200."""
        url = f"{self.service_urls[name]}/readyz"
        self.services[name].wait_until(lambda: http_ok(url), timeout=timeout)

    @property
    def state_path(self) -> Path:
        """`stack.json`: each child's pid and URL while the stack runs (rewritten on every restart)."""
        return self.config.data_dir / "stack.json"

    def children(self) -> list[ManagedProcess]:
        """Every child process, in start order (infrastructure, services, gateway)."""
        return [*self.infrastructure, *self.services.values()]

    def child_url(self, proc: ManagedProcess) -> str:
        """Where a child listens."""
        infrastructure = {"nats-server": self.nats_url, "nx-27017": self.mongodb_url}
        return infrastructure.get(proc.name) or self.service_urls[proc.name]

    def record_state(self) -> None:
        """Write `stack.json`, so operators and tests find each child's current pid."""
        write_private_json(
            self.state_path,
            {
                "pid": os.getpid(),
                "gateway_url": self.gateway_url,
                "children": {
                    proc.name: {"pid": proc.pid, "url": self.child_url(proc)}
                    for proc in self.children()
                    if proc.process is not None
                },
            },
        )

    def dead_children(self) -> list[str]:
        """Names of children that exited on their own."""
        return [proc.name for proc in self.children() if proc.exited()]

    def stop(self) -> None:
        """Gateway first, then services, then infrastructure; each gets SIGTERM, then SIGKILL."""
        gateway = self.services.pop("gateway", None)
        if gateway:
            gateway.stop()
        for proc in self.services.values():
            proc.stop()
        for proc in reversed(self.infrastructure):
            proc.stop()
        self.state_path.unlink(missing_ok=True)
