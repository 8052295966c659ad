"""Section 4: how soon a write shows in history, and how fast history takes in events.

Lag: writes through the gateway at a steady rate, each with its own `X-Request-ID`; the request id rides
in the event, so a poller on history's own database sees when each write's record becomes visible.
Lag = first seen in history - the client received the write's 200.

Ingestion: a backlog of valid `members_added` events published straight to `HUB_EVENTS` (as the relay
publishes them, `Nats-Msg-Id` = event id) while history_service is paused (SIGSTOP), so that what is timed
is history working through a backlog, not the publisher's pace; history's rate is read from its
recorded-events counter from its resumption (SIGCONT) until all are recorded. The reference, in the same
run: a bare nats-py pull consumer that fetches the same events in batches of history's size and
acknowledges each one, doing nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
import uuid
from datetime import datetime
from typing import Any

import nats
import nats.errors
from aiohttp import ClientSession
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.harness import Bench
from bench.profiling import profile_during
from bench.report import MISS, PASS, SKIP, Section, fmt, ratio
from history_service.repository import ORDER_EPOCH, TIE_SLOTS
from history_service.settings import HistorySettings
from shared import event_types as ev
from shared.events import STREAM_NAME, SUBJECT_PREFIX

Document = dict[str, Any]

LAG_TARGET_MS = 500.0
INGEST_TARGET_RATIO = 0.5  # history's ingestion against the bare pull-and-ack consumer's
LAG_SECONDS = 10.0
INGEST_EVENTS = 5000
BATCH: int = HistorySettings.model_fields["consumer_batch_size"].default  # history's fetch batch
# A record's `seq` orders it by when its event happened (history_service.repository.order_key), so one
# recorded late can sit below one seen already: the poller reads from the oldest write it has not seen yet
# (sent this long before its event's occurred_at, at least: same machine, same clock).
POLL_MARGIN_SECONDS = 0.05
# history keeps a head document per collection in `events`, its `seq` above 2**60 so that it sorts before
# the records (history_service.repository.HEAD_SEQ_BASE); records are the ones below.
RECORD_SEQ_LIMIT = 1 << 60


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def history_consuming(bench: Bench, collection_id: str, within: float = 20.0) -> bool:
    """Whether history has recorded anything about this collection within `within` seconds."""
    events = bench.db("history_service")["events"]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            found = await events.find_one(
                {"collection_id": collection_id, "seq": {"$lt": RECORD_SEQ_LIMIT}}, {"_id": 1}
            )
            if found:
                return True
        await asyncio.sleep(0.25)
    return False


def seq_at(moment: float) -> int:
    """The lowest record `seq` of an event that happened at `moment` (seconds since the epoch)."""
    return int((moment - ORDER_EPOCH.timestamp()) * 1000) * TIE_SLOTS


def epoch(stored: str) -> float:
    """A stored timestamp (`2023-11-27T09:42:47.269Z`) as seconds since the epoch."""
    return datetime.strptime(stored, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def spread(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of a list of milliseconds."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99), "max_ms": max(values)}


async def measure_lag(bench: Bench, rate: float, collections: list[str], seconds: float) -> dict[str, Any]:
    """Paced writes for `seconds`; each write's lag from its 200 to its record in history, by stage."""
    a_actor = bench.a_actor
    assert a_actor is not None
    run = uuid.uuid4().hex[:6]
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    records: dict[str, Document] = {}
    failures = 0
    events = bench.db("history_service")["events"]
    last = await events.find_one({"seq": {"$lt": RECORD_SEQ_LIMIT}}, {"seq": 1}, sort=[("seq", -1)])
    last_seq = int(last["seq"]) if last else 0
    writing = True
    give_up = float("inf")
    fields = {"seq": 1, "request_id": 1, "stream_seq": 1, "created_at": 1, "recorded_at": 1}

    async def poll() -> None:
        nonlocal last_seq
        while writing or (len(seen) < len(acked) and time.monotonic() < give_up):
            unseen = [moment for request_id, moment in sent.items() if request_id not in seen]
            floor = min(last_seq, seq_at(min(unseen, default=time.time()) - POLL_MARGIN_SECONDS))
            docs = await events.find(
                {"seq": {"$gt": floor, "$lt": RECORD_SEQ_LIMIT}}, fields, sort=[("seq", 1)]
            ).to_list()
            now = time.time()
            for doc in docs:
                last_seq = max(last_seq, int(doc["seq"]))
                request_id = doc.get("request_id") or ""
                if request_id.startswith(f"lag-{run}-") and request_id not in seen:
                    seen[request_id] = now
                    records[request_id] = doc
            await asyncio.sleep(0.01)

    async def write(http: ClientSession, n: int) -> None:
        nonlocal failures
        request_id = f"lag-{run}-{n}"
        sent[request_id] = time.time()
        async with http.post(
            f"{bench.gateway}{bench.a_base}/{collections[n % len(collections)]}/members",
            json={"add": [request_id]},
            headers={**a_actor.headers(), "X-Request-ID": request_id},
        ) as response:
            await response.read()
            if response.status == 200:
                acked[request_id] = time.time()
            else:
                failures += 1

    poller = asyncio.create_task(poll())
    total = int(rate * seconds)
    async with ClientSession() as http:
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        for n in range(total):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.add(asyncio.create_task(write(http, n)))
            pending = {task for task in pending if not task.done()}
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - started
    give_up = time.monotonic() + 15.0
    writing = False
    await poller
    lags = [(seen[r] - acked[r]) * 1000 for r in acked if r in seen]
    stages = await lag_stages(bench, acked, seen, records)
    return {
        "writes": total,
        "acknowledged": len(acked),
        "failed": failures,
        "rate_asked": rate,
        "rate_achieved": len(acked) / elapsed if elapsed else 0,
        "visible": len(lags),
        "missing_after_15s": len(acked) - len(lags),
        **spread(lags),
        "mean_ms": statistics.fmean(lags) if lags else None,
        "poll_interval_ms": 10,
        "stages": stages,
    }


async def lag_stages(
    bench: Bench, acked: dict[str, float], seen: dict[str, float], records: dict[str, Document]
) -> dict[str, dict[str, float | None]]:
    """Where the lag goes, for a sample of writes: the event's occurred_at (written with the change),
    its JetStream timestamp (the relay published it), the record's recorded_at (history projected it),
    the poller's first sight, and the client's 200."""
    sample = sorted(records)[:: max(1, len(records) // 100)]
    nc = await nats.connect(bench.stack.nats_url)
    try:
        js = nc.jetstream()
        stamps = []
        for request_id in sample:
            doc = records[request_id]
            stored = await js.get_msg(STREAM_NAME, int(doc["stream_seq"]))
            if stored.time is None:
                continue
            stamps.append(
                (
                    epoch(doc["created_at"]),
                    stored.time.timestamp(),
                    epoch(doc["recorded_at"]),
                    seen[request_id],
                    acked[request_id],
                )
            )
    except Exception as exc:  # the breakdown explains; the lag itself is already measured
        return {"unavailable": {"reason": repr(exc)}}  # type: ignore[dict-item]
    finally:
        await nc.close()
    return {
        "write -> 200 at the client": spread([(ack - occurred) * 1000 for occurred, _, _, _, ack in stamps]),
        "write -> published (outbox relay)": spread(
            [(pub - occurred) * 1000 for occurred, pub, _, _, _ in stamps]
        ),
        "published -> recorded (history consumer)": spread(
            [(rec - pub) * 1000 for _, pub, rec, _, _ in stamps]
        ),
        "recorded -> seen by the poller": spread([(sn - rec) * 1000 for _, _, rec, sn, _ in stamps]),
    }


async def measure_ingestion(bench: Bench, collection_id: str) -> dict[str, Any]:
    """History's rate through a backlog published while it was paused, and a bare pull-and-ack
    consumer's through the same events."""
    owner = bench.owner
    assert owner is not None
    envelopes = [
        ev.event(
            "catalog.collection.members_added",
            ev.ItemsChanged(kind="node", ids=[f"ingest-{i}"]),
            actor=owner.user_id,
            collection_id=collection_id,
            project_id=bench.project_id,
        )
        for i in range(INGEST_EVENTS)
    ]
    nc = await nats.connect(bench.stack.nats_url)
    try:
        js = nc.jetstream()
        recorded_before = await bench.metric_value("history_service", "history_events_recorded_total") or 0.0
        history = bench.pid("history_service")
        # Paused, history cannot take events as they come: afterwards it meets the whole backlog at once,
        # as after an outage, and its rate is its own rather than the publisher's.
        os.kill(history, signal.SIGSTOP)
        try:
            publish_started = time.monotonic()
            first_seq = 0
            for start in range(0, INGEST_EVENTS, 250):
                acks = await asyncio.gather(
                    *(
                        js.publish(
                            e.subject,
                            e.model_dump_json().encode(),
                            headers={"Nats-Msg-Id": e.id},
                            timeout=10,
                        )
                        for e in envelopes[start : start + 250]
                    )
                )
                if start == 0:
                    first_seq = min(ack.seq for ack in acks)
            published = time.monotonic()
            # The reference, on the same backlog, just before history works through it and again just
            # after: the mean of the two, so that other work on the machine drifting meanwhile weighs on
            # both sides of the ratio alike.
            raw_before = await raw_pull_and_ack(js, first_seq)
        finally:
            os.kill(history, signal.SIGCONT)
        resumed = time.time()
        recorded = 0.0
        deadline = time.monotonic() + 120
        while recorded < INGEST_EVENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            total = await bench.metric_value("history_service", "history_events_recorded_total") or 0.0
            recorded = total - recorded_before
        # Timed by the records themselves (`recorded_at`, stamped as each batch is written), so that the
        # polling above neither adds to the time nor takes CPU from history while it works.
        ingested = {"collection_id": collection_id, "event_type": "MEMBERS_ADDED"}
        stamps = await bench.db("history_service")["events"].find(ingested, {"recorded_at": 1}).to_list()
        last = max(epoch(doc["recorded_at"]) for doc in stamps)
        history_rate = recorded / max(last - resumed, 0.001)
        raw_after = await raw_pull_and_ack(js, first_seq)
        raw_rate = (raw_before + raw_after) / 2
    finally:
        await nc.close()
    return {
        "events": INGEST_EVENTS,
        "batch": BATCH,
        "publish_rate": INGEST_EVENTS / (published - publish_started),
        "history_recorded": recorded,
        "history_rate": history_rate,
        "history_basis": f"{INGEST_EVENTS} events published while it was paused, from its resumption",
        "raw_rate": raw_rate,
        "raw_rates": [raw_before, raw_after],
        "ratio": ratio(history_rate, raw_rate),
    }


async def raw_pull_and_ack(js: Any, first_seq: int) -> float:
    """Events per second a bare pull consumer fetches (batches of BATCH) and acknowledges one by one."""
    durable = f"bench-raw-{uuid.uuid4().hex[:6]}"
    await js.add_consumer(
        STREAM_NAME,
        ConsumerConfig(
            durable_name=durable,
            filter_subject=f"{SUBJECT_PREFIX}.>",
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=first_seq,
            ack_policy=AckPolicy.EXPLICIT,
            max_ack_pending=BATCH * 10,
        ),
    )
    try:
        sub = await js.pull_subscribe_bind(durable=durable, stream=STREAM_NAME)
        got = 0
        started = time.monotonic()
        deadline = started + 60
        while got < INGEST_EVENTS and time.monotonic() < deadline:
            try:
                messages = await sub.fetch(BATCH, timeout=1)
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio.TimeoutError from fetch
                continue
            for message in messages:
                await message.ack()
            got += len(messages)
        return got / (time.monotonic() - started)
    finally:
        await js.delete_consumer(STREAM_NAME, durable)


async def run(bench: Bench) -> Section:
    """Lag under paced writes; ingestion vs raw JetStream; a profile of history when lag misses."""
    section = Section(4, "Events: history lag and ingestion")
    a_actor, owner = bench.a_actor, bench.owner
    assert owner is not None
    assert a_actor is not None
    names = [f"lag-{i}" for i in range(20)]
    for name in names:
        await bench.ok("POST", bench.a_base, actor=a_actor, json={"name": name}, expect=201)
    probe = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": "ingest"})
    probe_id = probe["collection"]["id"]
    if not await history_consuming(bench, probe_id):
        section.summary = (
            f"{SKIP}: history_service not yet consuming (nothing recorded within 20 s of a write)."
        )
        section.data["verdicts"] = [("4: history lag p99 < 500 ms", SKIP), ("4: ingestion vs raw", SKIP)]
        return section
    # Paced at half of what the stack took in section 3, when known: sustained, not saturated.
    add_rps = bench.shared.get("add_members_rps")
    rate = min(100.0, max(20.0, 0.5 * add_rps)) if add_rps else 50.0
    lag = await measure_lag(bench, rate, names, LAG_SECONDS)
    ingestion = await measure_ingestion(bench, probe_id)
    lag_ok = lag["p99_ms"] is not None and lag["p99_ms"] < LAG_TARGET_MS and not lag["missing_after_15s"]
    table = section.table(
        "History lag (write acknowledged -> visible in history)",
        ["figure", "value", "reference", "target", "verdict"],
    )
    table.add(
        "writes/s sustained (A add member, through the gateway)",
        lag["rate_achieved"],
        f"{rate:.0f}/s asked" + (f" (half of section 3's {add_rps:.0f}/s)" if add_rps else ""),
        "—",
        "—",
    )
    table.add(
        "writes acknowledged / visible in history",
        f"{lag['acknowledged']} / {lag['visible']}",
        "every acknowledged write",
        "all",
        PASS if not lag["missing_after_15s"] else MISS,
    )
    table.add("lag p50 ms", lag["p50_ms"], "poller resolution 10 ms", "—", "—")
    table.add(
        "lag p99 ms",
        lag["p99_ms"],
        "poller resolution 10 ms",
        f"< {LAG_TARGET_MS:.0f}",
        PASS if lag_ok else MISS,
    )
    table.add("lag max ms", lag["max_ms"], "—", "—", "—")
    stages = section.table(
        "Where the lag goes (a sample of ~100 of those writes; timestamps in ms precision)",
        ["stage", "p50 ms", "p99 ms", "max ms"],
    )
    for stage, figures in lag["stages"].items():
        stages.add(stage, figures.get("p50_ms"), figures.get("p99_ms"), figures.get("max_ms"))
    ingest_ok = ingestion["ratio"] is not None and ingestion["ratio"] >= INGEST_TARGET_RATIO
    ingest = section.table("Ingestion rate", ["figure", "events/s", "reference", "ratio", "verdict"])
    ingest.add("JetStream publish (to build the backlog)", ingestion["publish_rate"], "—", None, "info")
    ingest.add(
        f"history_service ingestion ({ingestion['history_basis']})",
        ingestion["history_rate"],
        f"raw pull-and-ack; target >= {INGEST_TARGET_RATIO}x",
        ingestion["ratio"],
        PASS if ingest_ok else MISS,
    )
    ingest.add(
        f"raw nats-py pull (batch {BATCH}) + ack each: mean of just before and just after history "
        f"({fmt(ingestion['raw_rates'][0], 0)} and {fmt(ingestion['raw_rates'][1], 0)})",
        ingestion["raw_rate"],
        "reference",
        1.0,
        "—",
    )
    section.summary = (
        f"Lag: {lag['writes']} dialect-A member adds paced at {rate:.0f}/s for {LAG_SECONDS:.0f} s "
        "through the "
        "gateway; a poller reads history's `events` by `seq` every 10 ms. Target: p99 < "
        f"{LAG_TARGET_MS:.0f} ms. Ingestion: {INGEST_EVENTS} valid events published straight to "
        f"`{STREAM_NAME}` while history_service is paused (SIGSTOP); its rate runs from its resumption "
        "(SIGCONT) to the last record's `recorded_at`. The raw consumer reads the same "
        f"{INGEST_EVENTS} events just before (history still paused) and just after, in batches of history's "
        f"size ({BATCH}). Target: history >= "
        f"{INGEST_TARGET_RATIO}x the raw consumer."
    )
    section.notes.append(
        "Each batch of events history has met the collection of costs it one MongoDB command, an "
        "unordered `insert_many` (a redelivered event's duplicate `_id` counts as recorded), on the one "
        "nx-27017 process every service shares; the raw consumer writes nothing. The relay publishes one "
        "event at a time and waits for each JetStream ack (file storage, `sync_interval: always`: an fsync "
        "per message)."
    )
    if not lag_ok:
        processes = {name: bench.pid(name) for name in ("catalog_service", "history_service")}
        section.profiles += await profile_during(
            processes,
            bench.results_dir / "profiles",
            "lag",
            LAG_SECONDS,
            lambda: measure_lag(bench, rate, names, LAG_SECONDS),
        )
        section.notes.append(
            "Lag p99 missed its target: catalog_service (the request and its outbox relay) and "
            f"history_service (the consumer) were profiled during a second paced run at {rate:.0f}/s; below."
        )
    section.data = {
        "lag": lag,
        "ingestion": ingestion,
        "verdicts": [
            (f"4: history lag p99 < {LAG_TARGET_MS:.0f} ms", PASS if lag_ok else MISS),
            (
                f"4: history ingestion >= {INGEST_TARGET_RATIO}x raw JetStream pull-and-ack",
                f"{PASS if ingest_ok else MISS} ({fmt(ingestion['ratio'])}x)",
            ),
        ],
    }
    return section
