"""Sampling profiles of running service processes with py-spy, summarised as top functions."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = str(Path(__file__).resolve().parent.parent)


def py_spy_binary() -> str | None:
    """py-spy beside this interpreter (the dev extra) or on PATH; None when it is not installed."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


@dataclass
class Profile:
    """Where one process spent its sampled time."""

    process: str
    samples: int  # busy samples: those whose innermost frame is not a wait
    self_top: list[tuple[str, float]]  # (function, % of samples with it on top of the stack)
    inclusive_top: list[tuple[str, float]]  # (function, % of samples with it anywhere on the stack)
    file: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "process": self.process,
            "samples": self.samples,
            "self_top": self.self_top,
            "inclusive_top": self.inclusive_top,
            "file": self.file,
        }


class Recording:
    """A py-spy recording of one process running in the background."""

    def __init__(self, binary: str, process: str, pid: int, seconds: float, out: Path) -> None:
        self.process = process
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self._log = out.with_suffix(".log")
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, round(seconds))),
                    "--rate",
                    "100",
                    # Blocking (the default) pauses the process for each sample: slower while recording,
                    # but stacks stay whole; --nonblocking cut half of them short under this load.
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def finish(self, top: int = 12, timeout: float = 60.0) -> Profile | None:
        """Wait for py-spy and summarise; None (with the reason in the log) when it recorded nothing."""
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if not self.out.exists():
            return None  # py-spy's reason is left in the .log beside where the profile would be
        self._log.unlink(missing_ok=True)
        return summarise(self.process, self.out, top)


# Leaf frames where a thread waits rather than works (py-spy's idle detection misses some of them).
IDLE_LEAVES = frozenset(
    {
        "EpollSelector.select",
        "_worker",
        "Condition.wait",
        "Event.wait",
        "Thread._wait_for_tstate_lock",
        "BaseSelectorEventLoop._read_from_self",
    }
)
# Frames that are on every busy stack of their thread (entry points, event loops, thread pools).
PLUMBING = frozenset(
    {
        "<module>",
        "_run_module_as_main",
        "_run_code",
        "Thread._bootstrap",
        "Thread._bootstrap_inner",
        "Thread.run",
        "_worker",
        "_WorkItem.run",
        "BaseEventLoop.run_forever",
        "BaseEventLoop._run_once",
        "BaseEventLoop.run_until_complete",
        "Runner.run",
        "run",
        "run_app",
        "Handle._run",
    }
)


# Frames whose time means waiting, said in words beside them in the report.
MEANING = {
    "_serialize.<locals>.wrapper (nx_27017/handler.py)": "waiting for nx-27017's per-database lock",
    "_SelectorSocketTransport.write (asyncio/selector_events.py)": "socket send syscalls",
}


def function_of(frame: str) -> str:
    """`Class.method (path)` -> `Class.method`."""
    return frame.split(" (", 1)[0]


async def profile_during(
    processes: dict[str, int], out_dir: Path, name: str, seconds: float, work: Callable[[], Awaitable[Any]]
) -> list[Profile]:
    """py-spy each process (name -> pid) for `seconds` while `work()` runs; their summaries.

    Empty when py-spy is not installed (the dev extra brings it).
    """
    binary = py_spy_binary()
    if binary is None:
        return []
    recordings = [
        Recording(binary, process, pid, seconds, out_dir / f"{name}-{process}.txt")
        for process, pid in processes.items()
    ]
    await asyncio.sleep(0.5)  # let py-spy attach before the work starts
    await work()
    profiles = [await asyncio.to_thread(r.finish) for r in recordings]
    return [p for p in profiles if p is not None]


def summarise(process: str, path: Path, top: int = 12) -> Profile:
    """Top functions by self and inclusive share of busy samples, from py-spy's collapsed stacks."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [shorten(frame) for frame in stack.split(";") if frame]
        if not frames or function_of(frames[-1]) in IDLE_LEAVES:
            continue
        count = int(count_text)
        busy += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            if function_of(frame) not in PLUMBING:
                inclusive[frame] += count
    # What remains on (nearly) every busy stack is the service's own entry point: it says nothing.
    for everywhere in [frame for frame, n in inclusive.items() if n >= 0.95 * busy]:
        del inclusive[everywhere]

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        if not busy:
            return []
        return [
            (f"{name} [{MEANING[name]}]" if name in MEANING else name, round(100 * n / busy, 1))
            for name, n in counter.most_common(top)
        ]

    shown = path.resolve()
    shown_path = str(shown.relative_to(REPO_ROOT)) if shown.is_relative_to(REPO_ROOT) else str(shown)
    return Profile(process, busy, share(self_counts), share(inclusive), shown_path)


def shorten(frame: str) -> str:
    """`handler (site-packages/aiohttp/web_protocol.py:452)` -> `handler (aiohttp/web_protocol.py)`."""
    name, _, location = frame.partition(" (")
    location = location.rstrip(")")
    path = location.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", f"{REPO_ROOT}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name
