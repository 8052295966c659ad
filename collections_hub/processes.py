"""Child processes: start, wait until ready, stop gracefully (SIGTERM, then SIGKILL), or kill -9."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Children (nats-server, nx-27017, the services) create what they write readable by their owner only:
# the stores hold every user's data, the logs their requests.
PRIVATE_UMASK = 0o077


def make_private(data_dir: Path) -> None:
    """Create `data_dir` (mode 0700) if missing, and take group and other bits off everything in it
    already (a data dir from before files were private); symbolic links are neither followed nor
    changed."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            path.chmod(stat.S_IMODE(mode) & ~0o077)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter (created if missing, parents included)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def write_private_text(path: Path, text: str) -> None:
    """Write `path` readable by its owner only, whatever it was before."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def venv_binary(name: str) -> str:
    """A console script installed beside this interpreter (nats-server, nx-27017)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"{name} is not installed beside {sys.executable}; run `make run` or `make test`")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str) -> bool:
    """Whether a GET of the URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback URLs we built
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """One child process with its log file; stopping it never leaves it behind."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process (or again after an exit, unchanged); its output is appended to the log file."""
        private_dir(self.log_path.parent)
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        return self

    @property
    def pid(self) -> int:
        """The child's pid."""
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.process is not None and self.process.poll() is None

    def exited(self) -> bool:
        """Whether the child was started and has exited (crashed, killed or stopped)."""
        return self.process is not None and self.process.poll() is not None

    @property
    def exit_code(self) -> int | None:
        """The exit code once exited; negative `-N` when signal N killed it (as `subprocess` reports)."""
        return None if self.process is None else self.process.poll()

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Poll `ready()` until it is true; fail with the log's tail if the child dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the child's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9 the child and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def describe_exit(code: int | None) -> str:
    """`exit code 1` or `exit code -9 (SIGKILL)`: how an operator reads an exit."""
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {code} ({signal.Signals(-code).name})"
    return f"exit code {code}"
