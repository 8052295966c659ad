"""Section 3: three everyday requests through the full stack, beside a floor pipeline in the same run.

The floor (`bench/floor.py`) is a minimal aiohttp proxy in front of a minimal aiohttp handler that sends
the same single MongoDB command to the same nx-27017 server and answers the same shape; it authenticates
nothing, publishes no events and keeps no history. The full stack's requests go through the gateway
(API key), catalog_service and, where the request needs it, access_service.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from bench import floor
from bench.gateway_cost import measure, profile_under
from bench.harness import SERVICES, Bench, CpuMeter, client_total
from bench.report import MISS, PASS, Section, ratio
from bench.wrk import Load, WrkResult
from catalog_service.service import ListCursors
from collections_hub.processes import ManagedProcess

ERRORS_ALLOWED = 0.01  # share of failed requests past which a run measures nothing
TARGET = 0.75
WRITE_COLLECTIONS = 100
LIST_COLLECTIONS = 60
ROUNDS = 2
IDLE_SECONDS = 5.0  # how long the idle stack's periodic passes are counted, to leave them out per request
# Whole-system targets (issue 25, re-based on what section 3 measured under issue 12's <= 1 / <= 3): a read
# costs one command per document kind its answer holds (a collection: 1), a list page two (the view's
# positions, then the collections), a member write three on the request path (begin, apply, finish) plus one
# read for each other document kind its answer holds (dialect A's add lists the members: +1); what follows a
# write (history's share of a batch) is reported beside it, not held to a number. Per row: which figure is
# held, its limit, and what the limit counts.
WHOLE_SYSTEM_TARGETS: dict[str, tuple[str, float, str]] = {
    "GET a collection (C)": ("whole", 1.0, "per read of one collection"),
    "add a member (A, by name)": ("path", 4.0, "on the request path (3 + A's member list)"),
    "list with cursor (C, pageSize=10)": ("whole", 2.0, "per list page"),
}
MEMBER_BODY = '{"add":["%s-%d-%d"]}'  # run, wrk thread, request counter: a new member every request


async def fixtures(bench: Bench) -> dict[str, Any]:
    """Collections to read, to write (dialect A, by name) and to list (dialect C, keyset)."""
    owner, a_actor = bench.owner, bench.a_actor
    assert owner is not None
    assert a_actor is not None
    names = [f"e2e-{i}" for i in range(WRITE_COLLECTIONS)]
    ids = []
    for name in names:
        made = await bench.ok("POST", bench.a_base, actor=a_actor, json={"name": name}, expect=201)
        ids.append(made["id"])
    listed = []
    for i in range(LIST_COLLECTIONS):
        made = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": f"e2e-list-{i}"})
        listed.append(made["collection"]["id"])
    everything = await bench.db("catalog_service")["collections"].count_documents({"owner_id": owner.user_id})
    # A token a third of the way into the owner's list (a position in its view: docs/scale.md, "Lists").
    token = ListCursors(bench.stack.internal_secret).encode_cursor(owner.user_id, everything // 3)
    # The floor writes to its own copies, so that the stack's relay never sees the floor's outbox entries.
    copies = await bench.db("catalog_service")["collections"].find({"_id": {"$in": ids}}).to_list()
    for doc in copies:
        doc["outbox"], doc["outbox_count"] = {}, 0
    floor_db = bench.bench_db("floor")
    await floor_db["collections"].insert_many(copies)
    return {"names": names, "ids": ids, "get_id": listed[0], "token": token, "floor_db": floor_db.name}


def workloads(bench: Bench, fx: dict[str, Any], proxy_url: str) -> dict[str, tuple[Load, Load, list[str]]]:
    """Per request kind: the stack's load, the floor's load, and the processes to profile on a miss."""
    owner, a_actor = bench.owner, bench.a_actor
    assert owner is not None
    assert a_actor is not None
    json_headers = {"Content-Type": "application/json"}
    page = f"/v1/collections?pageSize=10&paginationToken={fx['token']}"
    return {
        "GET a collection (C)": (
            Load(bench.gateway, [f"/v1/collections/{fx['get_id']}"], headers=owner.headers()),
            Load(proxy_url, [f"/v1/collections/{fx['get_id']}"]),
            ["gateway", "catalog_service"],
        ),
        "add a member (A, by name)": (
            Load(
                bench.gateway,
                [f"{bench.a_base}/{name}/members" for name in fx["names"]],
                method="POST",
                headers={**a_actor.headers(), **json_headers},
                body_template=MEMBER_BODY,
            ),
            Load(
                proxy_url,
                [f"/v1/collections/{cid}/members" for cid in fx["ids"]],
                method="POST",
                headers=json_headers,
                body_template=MEMBER_BODY,
            ),
            ["gateway", "catalog_service"],
        ),
        "list with cursor (C, pageSize=10)": (
            Load(bench.gateway, [page], headers=owner.headers()),
            Load(proxy_url, [f"{page}&owner={owner.user_id}"]),
            ["gateway", "catalog_service", "access_service"],
        ),
    }


async def compare(
    bench: Bench,
    stack_load: Load,
    floor_load: Load,
    stack_pids: dict[str, int],
    floor_pids: dict[str, int],
    *,
    idle: tuple[float, float],
) -> dict[str, Any]:
    """One request kind: the stack's run (commands and CPU metered), then the floor's."""
    await asyncio.to_thread(stack_load.run, 1, bench.threads, bench.connections)  # warm-up
    await bench.settle()
    before, started = await bench.all_counts(), time.monotonic()
    stack_meter = CpuMeter(stack_pids)
    stack_meter.start()
    stack = await asyncio.to_thread(stack_load.run, bench.seconds, bench.threads, bench.connections)
    after, ran = await bench.all_counts(), time.monotonic()
    await bench.settle()  # the relay and history finish what the writes started: theirs to pay
    stack_meter.stop()
    settled, done = await bench.all_counts(), time.monotonic()
    floor_meter = CpuMeter(floor_pids)
    floor_result = await measure(bench, floor_load, floor_meter)
    periodic = (idle[0] * (ran - started), idle[1] * (done - started))
    return {
        **commands_per_request(before, after, settled, stack, periodic),
        "stack": stack,
        "floor": floor_result,
        "ratio": ratio(stack.rps, floor_result.rps),
        "stack_cpu_ms": per_request(stack_meter.used, stack),
        "floor_cpu_ms": per_request(floor_meter.used, floor_result),
    }


async def idle_rates(bench: Bench) -> tuple[float, float]:
    """Commands per second the settled stack sends with no request coming (its periodic passes: the
    relay's polling, the recovery passes), on the request path's clients and on the others."""
    await bench.settle()
    before, started = await bench.all_counts(), time.monotonic()
    await asyncio.sleep(IDLE_SECONDS)
    after, ended = await bench.all_counts(), time.monotonic()
    (path_before, rest_before), (path_after, rest_after) = command_totals(before), command_totals(after)
    seconds = ended - started
    return (path_after - path_before) / seconds, (rest_after - rest_before) / seconds


async def run(bench: Bench) -> Section:
    """GET, add members and a keyset page: full stack vs floor; commands per request; profiles on a miss."""
    section = Section(3, "End to end against the floor")
    fx = await fixtures(bench)
    logs = bench.work_dir / "logs"
    started: list[ManagedProcess] = []
    rows: dict[str, dict[str, Any]] = {}
    idle = await idle_rates(bench)
    try:
        handler, handler_url = await asyncio.to_thread(
            floor.start,
            "handler",
            logs,
            "--mongodb-url",
            bench.stack.mongodb_url,
            "--read-db",
            bench.db("catalog_service").name,
            "--write-db",
            fx["floor_db"],
            secret=bench.stack.internal_secret,
        )
        started.append(handler)
        proxy, proxy_url = await asyncio.to_thread(floor.start, "proxy", logs, "--upstream", handler_url)
        started.append(proxy)
        stack_pids = {}
        for name in ("gateway", *SERVICES, "nx-27017", "nats-server"):
            with contextlib.suppress(KeyError):  # servers given by URL are not ours to meter
                stack_pids[name] = bench.pid(name)
        floor_pids = {"floor proxy": proxy.pid, "floor handler": handler.pid}
        if "nx-27017" in stack_pids:
            floor_pids["nx-27017"] = stack_pids["nx-27017"]
        for label, (stack_load, floor_load, processes) in workloads(bench, fx, proxy_url).items():
            # Rounds alternate stack and floor, so that a burst of other work on the machine lands on
            # both sides; the verdict is on the mean of the rounds' ratios.
            rounds = [
                await compare(bench, stack_load, floor_load, stack_pids, floor_pids, idle=idle)
                for _ in range(ROUNDS)
            ]
            rows[label] = row = {
                **rounds[0],
                "ratio": statistics.fmean(r["ratio"] or 0 for r in rounds),
                "round_ratios": [r["ratio"] for r in rounds],
                "stack_rps": statistics.fmean(r["stack"].rps for r in rounds),
                "floor_rps": statistics.fmean(r["floor"].rps for r in rounds),
            }
            if label.startswith("add"):
                bench.shared["add_members_rps"] = row["stack_rps"]
            print(
                f"    {label}: stack {row['stack_rps']:.0f} req/s, floor {row['floor_rps']:.0f} req/s",
                flush=True,
            )
            if (row["ratio"] or 0) < TARGET:
                pids = {p: stack_pids[p] for p in [*processes, "nx-27017"] if p in stack_pids}
                profiles = await profile_under(bench, stack_load, pids, f"e2e-{label.split()[0].lower()}")
                for profile in profiles:
                    profile.process = f"{profile.process} ({label})"
                section.profiles += profiles
                await bench.settle()
    finally:
        for proc in reversed(started):
            await asyncio.to_thread(proc.stop)
    report(bench, section, rows)
    whole_system(section, rows, idle)
    return section


def report(bench: Bench, section: Section, rows: dict[str, dict[str, Any]]) -> None:
    """The section's tables, notes and verdict."""
    table = section.table(
        "Full stack vs floor (wrk, same run)",
        [
            "request",
            "stack req/s",
            "floor req/s",
            "ratio (each round)",
            "stack p50/p99 ms",
            "floor p50/p99 ms",
            "Mongo cmds/req (request path)",
            "Mongo cmds/req (after: relay, consumers)",
            "target",
            "verdict",
        ],
    )
    misses = []
    for label, row in rows.items():
        stack, floor_result = row["stack"], row["floor"]
        # A side that mostly failed measured how fast it fails: its ratio means nothing (the floor's add
        # once answered 500 to every request, and the stack looked 3x slower than it is).
        failing = [
            side
            for side, result in (("stack", stack), ("floor", floor_result))
            if result.non_2xx + result.socket_errors > ERRORS_ALLOWED * max(result.requests, 1)
        ]
        ok = (row["ratio"] or 0) >= TARGET and not failing
        if failing:
            section.notes.append(f"{label}: not a measurement, {' and '.join(failing)} failed (see below).")
        if not ok:
            misses.append(label)
        table.add(
            label,
            row["stack_rps"],
            row["floor_rps"],
            f"{row['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in row['round_ratios'])})",
            f"{stack.p50_ms:.1f} / {stack.p99_ms:.1f}",
            f"{floor_result.p50_ms:.1f} / {floor_result.p99_ms:.1f}",
            row["api_per_request"],
            row["background_per_request"],
            f">= {TARGET}x floor",
            PASS if ok else MISS,
        )
        errors = (stack.non_2xx + stack.socket_errors, floor_result.non_2xx + floor_result.socket_errors)
        if any(errors):
            section.notes.append(
                f"{label}: errors stack {errors[0]}, floor {errors[1]} (answers by status: stack "
                f"{stack.statuses}, floor {floor_result.statuses})."
            )
    names = ["gateway", "catalog_service", "access_service", "history_service", "nx-27017", "nats-server"]
    cpu_table = section.table(
        "CPU per request, ms (user+system over the measured run; the stack's includes the relay and "
        "history catching up after it)",
        [
            "request",
            "pipeline",
            *[n.removesuffix("_service") for n in names],
            "floor proxy",
            "floor handler",
            "total",
        ],
    )
    for label, row in rows.items():
        for pipeline, used in (("stack", row["stack_cpu_ms"]), ("floor", row["floor_cpu_ms"])):
            cells = [used.get(name) for name in [*names, "floor proxy", "floor handler"]]
            cpu_table.add(label, pipeline, *cells, sum(used.values()))
    section.summary = (
        f"wrk -t{bench.threads} -c{bench.connections}, {bench.seconds:.0f} s each after 1 s warm-up, "
        f"{ROUNDS} rounds of stack then floor (req/s: mean of the rounds; latency, commands and CPU: the "
        "first round); "
        "the stack "
        "through the gateway with an API key, the floor through its plain aiohttp proxy. The floor sends "
        "the same commands catalog does: `find_one` by id; the A add's begin, apply and finish "
        "(member_repository.py) and its member listing; the list's page of the owner's view (`_id $in`) "
        f"and those collections by id. Writes cycle through {WRITE_COLLECTIONS} collections, a new member "
        f"id per request. Target: the stack at >= {TARGET}x the floor's throughput."
    )
    section.notes.append(
        "What the stack does beyond the floor: authenticate (cached principal), forward with internal "
        "headers, parse strictly, check permissions, and for writes the outbox relay (publish from memory, "
        "then a polling pass's bulk clean-up) and history's projection run on the same 2 cores and the "
        "same nx-27017 server."
    )
    for label, row in rows.items():
        stack_nx, floor_nx = row["stack_cpu_ms"].get("nx-27017"), row["floor_cpu_ms"].get("nx-27017")
        if stack_nx and floor_nx and stack_nx > 1.5 * floor_nx:
            section.notes.append(
                f"{label}: nx-27017 spends {stack_nx:.2f} ms of CPU per request for the stack against "
                f"{floor_nx:.2f} ms for the floor. nx-27017 runs one command at a time per database (its "
                "profile shows threads waiting on that lock), so it is the bottleneck: besides the "
                "request's own commands the stack sends it the relay's clean-up `find` and `bulk_write` "
                "and history's inserts."
            )
    if misses:
        section.notes.append(
            "Missed: " + ", ".join(misses) + ". The stack's processes (and nx-27017, a Python server) "
            "were profiled under that load (py-spy, 100 Hz, 10 s): where the time goes is below."
        )
    section.data = {
        "rows": {
            label: {
                **{k: v for k, v in row.items() if k not in ("stack", "floor")},
                "stack": row["stack"].as_dict(),
                "floor": row["floor"].as_dict(),
            }
            for label, row in rows.items()
        },
        "verdicts": [
            (f"3: stack >= {TARGET}x floor, reads and writes", PASS if rows and not misses else MISS)
        ],
    }


def per_request(used: dict[str, float], result: WrkResult) -> dict[str, float]:
    """CPU milliseconds per request, by process."""
    return {name: seconds * 1000 / max(1, result.requests) for name, seconds in used.items()}


def command_totals(counts: dict[str, Any]) -> tuple[float, float]:
    """Commands sent so far on the request path (catalog's and access's `api` clients) and after it
    (every service's relay and consumers, and history, which only consumes)."""
    path = sum(client_total(counts[s], "api") for s in ("catalog_service", "access_service"))
    after = sum(client_total(counts[s], "relay", "consumer") for s in SERVICES) + client_total(
        counts["history_service"], "api"
    )
    return path, after


def commands_per_request(
    before: dict[str, Any],
    after: dict[str, Any],
    settled: dict[str, Any],
    result: WrkResult,
    periodic: tuple[float, float],
) -> dict[str, Any]:
    """Request-path commands and what followed (relay, consumers, history), per request; and the share of
    each that the periodic passes would have sent anyway over the same time (`periodic`, from the idle
    stack's rates)."""
    requests = max(1, result.requests)
    path = command_totals(after)[0] - command_totals(before)[0]
    background = command_totals(settled)[1] - command_totals(before)[1]
    return {
        "api_per_request": path / requests,
        "background_per_request": background / requests,
        "periodic_per_request": (periodic[0] + periodic[1]) / requests,
        "whole_per_request": max(0.0, path + background - periodic[0] - periodic[1]) / requests,
    }


def whole_system(section: Section, rows: dict[str, dict[str, Any]], idle: tuple[float, float]) -> None:
    """Every service's commands per request, request path and after, less what the periodic passes send
    whether requests come or not; each row against its target (`WHOLE_SYSTEM_TARGETS`)."""
    table = section.table(
        "Whole system: MongoDB commands per request (every service's clients)",
        [
            "request",
            "request path",
            "after (relay, consumers)",
            "periodic passes over the same time (left out)",
            "whole system, caused by the request",
            "target",
            "verdict",
        ],
    )
    verdicts: dict[str, bool] = {}
    for label, row in rows.items():
        figure, limit, counts = WHOLE_SYSTEM_TARGETS[label]
        held = row["whole_per_request"] if figure == "whole" else row["api_per_request"]
        ok = round(held, 2) <= limit
        verdicts[label] = ok
        table.add(
            label,
            row["api_per_request"],
            row["background_per_request"],
            row["periodic_per_request"],
            row["whole_per_request"],
            f"<= {limit:.0f} {counts}",
            PASS if ok else MISS,
        )
    section.notes.append(
        f"Periodic passes: the settled stack, with no request coming, sent {idle[0]:.1f} commands/s on the "
        f"request path's clients and {idle[1]:.1f}/s on the others over {IDLE_SECONDS:.0f} s (the relay's "
        "polling pass, the recovery passes); that rate times each run's duration is left out of its whole-"
        "system figure. Dialect A's add answers with every member of the collection, so its request path "
        "holds one read of the members besides the write's begin, apply and finish (member_repository.py)."
    )
    fields = ("api_per_request", "background_per_request", "periodic_per_request", "whole_per_request")
    section.data["whole_system"] = {label: {k: row[k] for k in fields} for label, row in rows.items()}
    section.data["verdicts"] += [
        (f"3: {label}: <= {limit:.0f} commands {counts}", PASS if verdicts.get(label, False) else MISS)
        for label, (_, limit, counts) in WHOLE_SYSTEM_TARGETS.items()
    ]
