"""Supervision of the embedded stack: a child that exits is restarted, until one keeps failing.

Only `collections-hub up` runs it. `EmbeddedStack` on its own restarts nothing (fault tests kill its
processes on purpose and restart them themselves). A child that exits, crashed or killed, is started
again with the same argv, environment, port and data directory after a backoff of
`backoff_seconds * 2 ** (attempt - 1)`, at most `backoff_cap_seconds`; the attempt count starts over once
the child has stayed up `stable_after_seconds`. When one child exits `max_exits` times within
`window_seconds`, supervision gives up and `up` stops the whole stack with exit code 1: a child that
cannot start (a port taken, a corrupt store) would otherwise be restarted forever and hide the cause.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from collections_hub.processes import ManagedProcess, describe_exit


@dataclass(frozen=True)
class RestartPolicy:
    """How soon a child is restarted, and when restarting it is given up."""

    backoff_seconds: float = 0.5
    backoff_cap_seconds: float = 10.0
    stable_after_seconds: float = 30.0
    max_exits: int = 5
    window_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RestartPolicy:
        """The policy from `HUB_RESTART_*` variables, defaults for those unset."""
        d = cls()
        return cls(
            backoff_seconds=float(env.get("HUB_RESTART_BACKOFF_SECONDS", d.backoff_seconds)),
            backoff_cap_seconds=float(env.get("HUB_RESTART_BACKOFF_CAP_SECONDS", d.backoff_cap_seconds)),
            stable_after_seconds=float(env.get("HUB_RESTART_STABLE_AFTER_SECONDS", d.stable_after_seconds)),
            max_exits=int(env.get("HUB_RESTART_MAX_EXITS", d.max_exits)),
            window_seconds=float(env.get("HUB_RESTART_WINDOW_SECONDS", d.window_seconds)),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart attempt `attempt` (1, 2, ...)."""
        return float(min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** (attempt - 1)))


class Supervised(Protocol):
    """What the supervisor watches: the stack's children, and where it records their pids."""

    def children(self) -> list[ManagedProcess]:
        """Every child process the stack started, in start order."""
        ...

    def record_state(self) -> None:
        """Write the children's pids and URLs where operators (and tests) read them."""
        ...


@dataclass
class _Track:
    """One child's recent exits and its pending restart, on the supervisor's clock."""

    started: float  # its latest start, or when supervision first saw it running
    exits: deque[float] = field(default_factory=deque)
    attempt: int = 0
    restart_at: float | None = None


class Supervisor:
    """Restarts exited children with backoff; reports when one keeps failing."""

    def __init__(
        self,
        stack: Supervised,
        policy: RestartPolicy,
        *,
        log: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.policy = policy
        self.log = log or sys.stderr
        self.clock = clock
        self._tracks: dict[str, _Track] = {}

    def supervise_once(self) -> str | None:
        """Notice exits and start children whose backoff is over; the reason to stop the stack, or None."""
        now = self.clock()
        for child in self.stack.children():
            track = self._tracks.setdefault(child.name, _Track(started=now))
            if track.restart_at is None and child.exited():
                if reason := self._exited(child, track, now):
                    return reason
            elif track.restart_at is not None and now >= track.restart_at:
                track.restart_at = None
                self._restart(child, track, now)
        return None

    def run(self, stopping: threading.Event, interval: float = 0.2) -> int:
        """Supervise until `stopping` is set (0) or a child keeps failing (1, after saying why)."""
        while not stopping.wait(interval):
            if reason := self.supervise_once():
                self._say(reason)
                return 1
        return 0

    def _exited(self, child: ManagedProcess, track: _Track, now: float) -> str | None:
        if now - track.started >= self.policy.stable_after_seconds:
            track.attempt = 0  # it ran long enough: this exit is not part of a crash loop
        track.attempt += 1
        track.exits.append(now)
        while track.exits and track.exits[0] < now - self.policy.window_seconds:
            track.exits.popleft()
        exit_text = describe_exit(child.exit_code)
        if len(track.exits) >= self.policy.max_exits:
            return (
                f"collections-hub: {child.name} exited {len(track.exits)} times within "
                f"{self.policy.window_seconds:g} s (last: {exit_text}); stopping every process. "
                f"Its log ({child.log_path}) ends:\n{child.log_tail(15)}"
            )
        delay = self.policy.delay(track.attempt)
        track.restart_at = now + delay
        self._say(
            f"collections-hub: {child.name} (pid {child.pid}) exited, {exit_text}; "
            f"restart attempt {track.attempt} in {delay:g} s (log: {child.log_path})"
        )
        return None

    def _restart(self, child: ManagedProcess, track: _Track, now: float) -> None:
        track.started = now
        try:
            child.start()
        except OSError as error:
            # The old, exited process stays in place: the next pass counts this as another exit.
            self._say(f"collections-hub: could not restart {child.name}: {error}")
            return
        self._say(f"collections-hub: restarted {child.name} as pid {child.pid} (attempt {track.attempt})")
        self.stack.record_state()

    def _say(self, line: str) -> None:
        print(line, file=self.log, flush=True)
