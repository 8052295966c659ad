"""Run the benchmarks against a fresh embedded stack and write `bench/results/latest.{md,json}`.

    .venv/bin/python -m bench.run                 # everything (~6-9 minutes on 2 cores)
    .venv/bin/python -m bench.run --only 1,2      # some sections
    MONGODB_URL=... NATS_URL=... .venv/bin/python -m bench.run   # existing servers

All traffic stays on 127.0.0.1. Every load is bounded in time (`--seconds` per wrk run) and count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import end_to_end, events, gateway_cost, memory, migrate, roundtrips, scale, tracing
from bench.harness import Bench, close_bench, open_bench
from bench.nginx import nginx_version
from bench.report import SKIP, Section, write
from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS: dict[int, tuple[str, Callable[[Bench], Awaitable[Section]]]] = {
    1: ("Round trips: MongoDB commands per request", roundtrips.run),
    2: ("Gateway cost", gateway_cost.run),
    3: ("End to end against the floor", end_to_end.run),
    4: ("Events: history lag and ingestion", events.run),
    5: ("Scale: membership size and list depth", scale.run),
    6: ("Memory: peak RSS per service", memory.run),
    7: ("Migrate and export", migrate.run),
    8: ("Tracing cost: off vs on (sampled 1 and 0.01)", tracing.run),
}


def ensure_tools(install: bool) -> None:
    """wrk and nginx come from Debian; install them (apt-get update once) when missing and allowed."""
    missing = [
        tool for tool in ("wrk", "nginx") if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists())
    ]
    if not missing:
        return
    if not install or os.geteuid() != 0:
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install -y wrk nginx (or run as root)")
    print(f"installing {', '.join(missing)} with apt-get", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk", "nginx"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def wrk_version() -> str:
    """`4.1.0-3+b2`."""
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else "wrk"
    return first.split(" Copyright")[0].removeprefix("wrk ").strip()


async def run_sections(
    stack: EmbeddedStack, chosen: list[int], args: argparse.Namespace, work_dir: Path
) -> tuple[list[Section], list[str]]:
    """Open the bench, run the chosen sections in order, never letting one failure lose the others."""
    bench = await open_bench(
        stack,
        results_dir=args.out,
        work_dir=work_dir,
        seconds=args.seconds,
        threads=args.threads,
        connections=args.connections,
    )
    sections: list[Section] = []
    reported_dead: set[str] = set()
    try:
        for number in chosen:
            title, runner = SECTIONS[number]
            print(f"[{time.strftime('%H:%M:%S')}] section {number}: {title}", flush=True)
            started = time.monotonic()
            try:
                section = await runner(bench)
            except Exception as exc:  # a broken section is reported, and the others still run
                section = Section(number, title, summary=f"{SKIP}: the section failed: {exc!r}")
                section.notes.append("```\n" + traceback.format_exc()[-1500:] + "\n```")
                section.data["verdicts"] = [(f"{number}: section ran", f"failed: {type(exc).__name__}")]
                traceback.print_exc()
            section.data["seconds"] = round(time.monotonic() - started, 1)
            if dead := [name for name in stack.dead_children() if name not in reported_dead]:
                reported_dead.update(dead)
                message = f"Exited during section {number}: {', '.join(dead)} (see its log with --keep)."
                section.notes.append(message)
                bench.notes.append(message)
                print(f"    {message}", flush=True)
            print(f"    done in {section.data['seconds']} s", flush=True)
            sections.append(section)
        return sections, bench.notes
    finally:
        await close_bench(bench)


def main() -> None:
    """Parse arguments, start the stack, run, write the report, stop everything this run started."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8", help="comma-separated section numbers")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measured wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md/.json go")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk/nginx")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir (logs, profiles)")
    parser.add_argument(
        "--export-members", type=int, default=None, help="section 7's export size (default 50,000)"
    )
    args = parser.parse_args()
    if args.export_members:
        os.environ["BENCH_EXPORT_MEMBERS"] = str(args.export_members)
    chosen = sorted({int(n) for n in args.only.split(",") if n.strip()})
    ensure_tools(install=not args.no_install)
    shutil.rmtree(args.out / "profiles", ignore_errors=True)  # only this run's profiles stay beside it
    work_dir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    config = StackConfig(
        data_dir=work_dir / "stack",
        port=free_port(),
        mongodb_url=os.environ.get("MONGODB_URL") or None,
        nats_url=os.environ.get("NATS_URL") or None,
        admin_api_key=f"bench-admin-{secrets.token_urlsafe(24)}",
        database_prefix=f"bench_{uuid.uuid4().hex[:8]}",
        # Slow pages (section 5) are timed rather than cut off at the default 10 s.
        # Rate limits off: the bench measures throughput from one address with one key.
        extra_env={
            "HUB_UPSTREAM_TIMEOUT_SECONDS": "60",
            "HUB_RATE_LIMIT_CREDENTIAL_PER_SECOND": "0",
            "HUB_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
            "HUB_RATE_LIMIT_AUTH_FAILURES_PER_SECOND": "0",
        },
    )
    load_before = os.getloadavg()[0]
    started_at = datetime.now(UTC)
    started = time.monotonic()
    stack = EmbeddedStack(config)
    print(f"starting the stack in {config.data_dir}", flush=True)
    stack.start()
    try:
        sections, notes = asyncio.run(run_sections(stack, chosen, args, work_dir))
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    meta = {
        "started": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "stack": (
            "embedded (nats-server + nx-27017 started by the run)"
            if not (config.mongodb_url or config.nats_url)
            else f"MONGODB_URL={'set' if config.mongodb_url else 'embedded'}, "
            f"NATS_URL={'set' if config.nats_url else 'embedded'}"
        ),
        "wrk": wrk_version(),
        "nginx": nginx_version(),
        "load": (
            f"-t{args.threads} -c{args.connections}, {args.seconds:.0f} s per measured run after 1 s warm-up"
        ),
        "elapsed_s": time.monotonic() - started,
        "sections": chosen,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "notes": [
            *notes,
            f"1-minute load average {load_before:.2f} before the run and {os.getloadavg()[0]:.2f} after: "
            "other "
            "work on the machine shares the 2 cores with every figure here.",
            "The gateway's upstream timeout is raised to 60 s for this run "
            "(HUB_UPSTREAM_TIMEOUT_SECONDS), so "
            "that section 5's slow pages are timed rather than cut off at 10 s.",
        ],
    }
    md, js = write(args.out, meta, sections)
    print(f"wrote {md} and {js} in {meta['elapsed_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
