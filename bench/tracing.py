"""Section 8: what tracing costs. The same requests on three stacks: tracing off, on sampling every trace,
and on sampling 1 in 100 (`parentbased_traceidratio`), each exporting OTLP/HTTP to a collector stand-in.

Each configuration is a stack of its own (gateway and the three services as processes, on this run's
nx-27017 and nats-server, its own databases), started with the standard `OTEL_*` variables an operator
sets, so the figures include the instrumentations, the batch processor and the export. The collector
stand-in answers in this process and counts the spans it receives (its CPU is not counted: in production
the collector runs elsewhere). Measured per configuration, after a 1 s warm-up:
- the trivial route: the gateway's own `GET /v1/me` (API key, principal cached: one process);
- a member add in dialect A (gateway, catalog's three commands, the relay's publish, history's write).
CPU is the user + system time of the four processes per request, over the run and until the writes have
reached history. The three stacks run side by side and take turns, so other load falls on each alike.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.end_to_end import MEMBER_BODY
from bench.harness import PROCESSES, Bench, CpuMeter
from bench.report import Section, fmt, ratio
from bench.wrk import Load, WrkResult
from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig

COLLECTIONS = 8
ROUNDS = 2
# The batch processor exports every 5 s (OTEL_BSP_SCHEDULE_DELAY's default).
EXPORT_WAIT = 5.5
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "off": {"OTEL_SDK_DISABLED": "true"},
    "on, sampled 1": {"OTEL_TRACES_SAMPLER_ARG": "1"},
    "on, sampled 0.01": {"OTEL_TRACES_SAMPLER_ARG": "0.01"},
}


@dataclass
class SpanSink:
    """An OTLP/HTTP trace receiver that counts what it is sent."""

    url: str = ""
    spans: int = 0

    async def receive(self, request: web.Request) -> web.Response:
        """Count one export's spans; answer as a collector does."""
        export = ExportTraceServiceRequest.FromString(await request.read())
        self.spans += sum(len(s.spans) for rs in export.resource_spans for s in rs.scope_spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )


def tracing_env(sink: SpanSink, overrides: dict[str, str]) -> dict[str, str]:
    """The variables docs/operations.md sets to turn tracing on, with this configuration's overrides."""
    if "OTEL_SDK_DISABLED" in overrides:
        return overrides
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        **overrides,
    }


def start_stack(bench: Bench, label: str, env: dict[str, str]) -> EmbeddedStack:
    """A stack of its own on this run's servers, with rate limits off like the bench's."""
    config = StackConfig(
        data_dir=bench.work_dir / f"tracing-{label.replace(' ', '').replace(',', '-')}",
        port=free_port(),
        mongodb_url=bench.stack.mongodb_url,
        nats_url=bench.stack.nats_url,
        admin_api_key=f"bench-tracing-{secrets.token_urlsafe(16)}",
        database_prefix=f"bt_{uuid.uuid4().hex[:8]}",
        extra_env={**bench.stack.config.extra_env, **env},
    )
    stack = EmbeddedStack(config)
    stack.start()
    return stack


async def member_paths(http: ClientSession, stack: EmbeddedStack) -> list[str]:
    """A project and collections to add members to, in dialect A (as the admin: decided locally)."""
    headers = {"X-API-KEY": stack.admin_api_key}
    slug = f"trace-{uuid.uuid4().hex[:8]}"
    base = f"/namespaces/{slug}/projects/p/collections"
    for path, body in [
        ("/admin/namespaces", {"slug": slug}),
        (f"/admin/namespaces/{slug}/projects", {"slug": "p"}),
        *[(base, {"name": f"t-{n}"}) for n in range(COLLECTIONS)],
    ]:
        async with http.post(f"{stack.gateway_url}{path}", json=body, headers=headers) as response:
            if response.status != 201:
                raise RuntimeError(f"POST {path} -> {response.status} {await response.text()}")
    return [f"{base}/t-{n}/members" for n in range(COLLECTIONS)]


async def history_settled(http: ClientSession, stack: EmbeddedStack, limit: float = 30.0) -> None:
    """Wait until history's recorded count stops moving (the writes' events have been projected)."""
    url = f"{stack.service_urls['history_service']}/metrics"
    previous, deadline = -1.0, time.monotonic() + limit
    while time.monotonic() < deadline:
        async with http.get(url) as response:
            text = await response.text()
        recorded = sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("history_events_recorded")
        )
        if recorded == previous:
            return
        previous = recorded
        await asyncio.sleep(0.5)


async def measure(
    bench: Bench, stack: EmbeddedStack, load: Load, http: ClientSession, sink: SpanSink
) -> dict[str, Any]:
    """Warm up, then one metered wrk run: CPU of the four processes and spans exported, per request.

    Both are counted until the writes have reached history and the batch processor has exported."""
    await asyncio.to_thread(load.run, 1, bench.threads, bench.connections)
    await history_settled(http, stack)
    await asyncio.sleep(EXPORT_WAIT)
    spans = sink.spans
    meter = CpuMeter({name: stack.services[name].pid for name in PROCESSES})
    meter.start()
    result: WrkResult = await asyncio.to_thread(load.run, bench.seconds, bench.threads, bench.connections)
    await history_settled(http, stack)
    await asyncio.sleep(EXPORT_WAIT)
    used = meter.stop()
    requests = max(1, result.requests)
    return {
        "wrk": result,
        "cpu_ms": sum(used.values()) / requests * 1e3,
        "spans": (sink.spans - spans) / requests,
    }


def best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Of a configuration's rounds, the one with the highest throughput (the least disturbed by others)."""
    return max(rows, key=lambda row: float(row["wrk"].rps))


async def run(bench: Bench) -> Section:
    """Both requests under the three configurations, one after another in this run."""
    section = Section(8, "Tracing cost: off vs on (sampled 1 and 0.01)")
    sink = SpanSink()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", sink.receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    sink.url = str(server.make_url("")).rstrip("/")
    figures: dict[str, dict[str, dict[str, Any]]] = {}
    stacks: dict[str, EmbeddedStack] = {}
    try:
        async with ClientSession() as http:
            # All three run side by side and take turns, so load from elsewhere on the machine falls on
            # each alike; each configuration's best round is reported.
            for label, overrides in CONFIGURATIONS.items():
                stacks[label] = await asyncio.to_thread(
                    start_stack, bench, label, tracing_env(sink, overrides)
                )
            loads: dict[str, dict[str, Load]] = {}
            for label, stack in stacks.items():
                key = {"X-API-KEY": stack.admin_api_key}
                loads[label] = {
                    "GET /v1/me (gateway only)": Load(stack.gateway_url, ["/v1/me"], headers=key),
                    "add a member (A)": Load(
                        stack.gateway_url,
                        await member_paths(http, stack),
                        method="POST",
                        headers={**key, "Content-Type": "application/json"},
                        body_template=MEMBER_BODY,
                    ),
                }
            rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for name in ("GET /v1/me (gateway only)", "add a member (A)"):
                for _ in range(ROUNDS):
                    for label, stack in stacks.items():
                        row = await measure(bench, stack, loads[label][name], http, sink)
                        rounds.setdefault((name, label), []).append(row)
                        print(f"    {label}, {name}: {row['wrk'].rps:.0f} req/s", flush=True)
            for (name, label), rows in rounds.items():
                figures.setdefault(name, {})[label] = best(rows)
    finally:
        for stack in stacks.values():
            await asyncio.to_thread(stack.stop)
        await server.close()
    table = section.table(
        "Tracing off vs on (wrk, same machine, same run; CPU = the four processes)",
        ["request", "tracing", "req/s", "vs off", "p50 ms", "p99 ms", "CPU ms/req", "spans/req", "non-2xx"],
    )
    for name, rows in figures.items():
        off = rows["off"]["wrk"].rps
        for label, row in rows.items():
            wrk = row["wrk"]
            table.add(
                name,
                label,
                fmt(wrk.rps, 0),
                fmt(ratio(wrk.rps, off)),
                fmt(wrk.p50_ms),
                fmt(wrk.p99_ms),
                fmt(row["cpu_ms"]),
                fmt(row["spans"], 1),
                wrk.non_2xx,
            )
    section.data["figures"] = {
        name: {label: {**row, "wrk": row["wrk"].as_dict()} for label, row in rows.items()}
        for name, rows in figures.items()
    }
    on = figures.get("add a member (A)", {})
    if {"off", "on, sampled 1", "on, sampled 0.01"} <= on.keys():
        section.summary = (
            f"A member add runs at {fmt(ratio(on['on, sampled 1']['wrk'].rps, on['off']['wrk'].rps))} of its "
            f"untraced throughput with every trace sampled, "
            f"{fmt(ratio(on['on, sampled 0.01']['wrk'].rps, on['off']['wrk'].rps))} sampling 1 in 100."
        )
    section.notes.append(
        "Each configuration is a stack of its own started for this section (same code, same servers); the "
        f"three take turns, {ROUNDS} rounds each, and the best round is shown. Spans go by OTLP/HTTP to a "
        "receiver in the bench process, whose CPU is not counted. spans/req includes the background's "
        "(recovery passes, startup) sampled during the run."
    )
    return section
