"""Section 6: peak resident memory (VmHWM) of every service process after the load."""

from __future__ import annotations

from pathlib import Path

from bench.harness import PROCESSES, Bench
from bench.report import MISS, PASS, Section

LIMIT_MB = 150.0


def status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: resident now)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


async def run(bench: Bench) -> Section:
    """VmHWM and VmRSS of the gateway and the services (and, for information, the servers)."""
    section = Section(6, "Memory: peak RSS per service")
    section.summary = (
        "Read from /proc/<pid>/status at the end of the run, after every load above: VmHWM is the peak "
        f"resident set over the process's life. Target: < {LIMIT_MB:.0f} MB each."
    )
    table = section.table(
        "Peak resident memory", ["process", "peak RSS (VmHWM) MB", "RSS now MB", "target", "verdict"]
    )
    misses = []
    data = {}
    for name in (*PROCESSES, "nx-27017", "nats-server"):
        try:
            pid = bench.pid(name)
        except KeyError:
            continue  # a server given by URL is not ours to measure
        if name in bench.stack.dead_children():
            table.add(name, None, None, "—", "exited during the run")
            misses.append(f"{name} (exited during the run, so its peak is unknown)")
            data[name] = {"pid": pid, "exited": True}
            continue
        peak, now = status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")
        peak_mb = peak / 1024 if peak is not None else None
        now_mb = now / 1024 if now is not None else None
        is_service = name in PROCESSES
        ok = peak_mb is not None and peak_mb < LIMIT_MB
        if is_service and not ok:
            misses.append(name)
        table.add(
            name,
            peak_mb,
            now_mb,
            f"< {LIMIT_MB:.0f} MB" if is_service else "— (server)",
            (PASS if ok else MISS) if is_service else "info",
        )
        data[name] = {"pid": pid, "vmhwm_mb": peak_mb, "vmrss_mb": now_mb}
    if misses:
        section.notes.append(f"Over {LIMIT_MB:.0f} MB: {', '.join(misses)}.")
    section.data = {
        "processes": data,
        "verdicts": [(f"6: peak RSS < {LIMIT_MB:.0f} MB per service", PASS if not misses else MISS)],
    }
    return section
