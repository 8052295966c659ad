"""Section 2: what the gateway costs, beside nginx as a plain reverse proxy and beside no proxy at all.

The gateway can only forward to the services it routes to, and every routed service path does MongoDB
work, so a second gateway process (the same code and settings, authenticating through the same
access_service) is started with a trivial upstream in catalog's place: an aiohttp app answering every
path as a service's `/healthz` does. Against that upstream, each measured the same way:
- the gateway (API key: authentication, principal cache, internal headers, forwarding), also on
  asyncio's own loop (`HUB_UVLOOP=0`) and with two workers (`HUB_GATEWAY_WORKERS=2`);
- nginx as a plain reverse proxy (one worker, keep-alive upstream, no authentication);
- a plain aiohttp client-session proxy (the floor pipeline's proxy; the gateway's own forwarding is
  `gateway/upstream.py`);
- the upstream direct.
Also shown: the real route `GET /v1/collections/{id}` (one `find_one` on nx-27017) through the stack's
gateway, nginx and direct, and the gateway's own `GET /v1/me`.
"""

from __future__ import annotations

import asyncio
import os
import sys

from bench import floor
from bench.harness import Bench, CpuMeter
from bench.nginx import start_nginx
from bench.profiling import Profile, profile_during
from bench.report import MISS, PASS, Section, ratio
from bench.wrk import Load, WrkResult
from collections_hub.processes import ManagedProcess, free_port, http_ok
from shared.principal import FORWARDED_HEADER, PRINCIPAL_HEADER, derived_credential

TARGET = 0.5
CPU_TARGET = 1.3
GATEWAY = "trivial: gateway (API key)"
ASYNCIO_GATEWAY = "trivial: gateway on asyncio's loop (API key)"
WORKERS_GATEWAY = "trivial: gateway, 2 workers (API key)"
NGINX = "trivial: nginx (no auth)"
PLAIN_PROXY = "trivial: aiohttp proxy (no auth)"
TARGET_LOADS = (GATEWAY, NGINX, PLAIN_PROXY)
ROUNDS = 2
# A directory holding another version's `gateway/` package (`git archive <rev> gateway | tar -x -C DIR`):
# when set, that gateway is measured too, in the same rounds, for a before/after from one run.
BEFORE_ENV = "BENCH_GATEWAY_BEFORE"
BEFORE = "trivial: gateway before (API key)"
OWN_ME = "gateway's own GET /v1/me (API key)"


async def measure(bench: Bench, load: Load, meter: CpuMeter | None = None) -> WrkResult:
    """A 1 s warm-up, then the measured run (in a thread: wrk blocks), CPU metered around it."""
    await asyncio.to_thread(load.run, 1, bench.threads, bench.connections)
    if meter:
        meter.start()
    result = await asyncio.to_thread(load.run, bench.seconds, bench.threads, bench.connections)
    if meter:
        meter.stop()
    return result


def combined(results: list[WrkResult]) -> WrkResult:
    """Several runs of one load as one: requests and time summed, the mean p50, the worst p99."""
    requests = sum(r.requests for r in results)
    seconds = sum(r.seconds for r in results)
    return WrkResult(
        url=results[0].url,
        requests=requests,
        seconds=seconds,
        rps=requests / seconds if seconds else 0.0,
        p50_ms=sum(r.p50_ms for r in results) / len(results),
        p99_ms=max(r.p99_ms for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
    )


async def profile_under(bench: Bench, load: Load, processes: dict[str, int], name: str) -> list[Profile]:
    """py-spy the processes (name -> pid) for ~10 s while `load` runs; their summaries."""
    seconds = max(10.0, bench.seconds)
    return await profile_during(
        processes,
        bench.results_dir / "profiles",
        name,
        seconds,
        lambda: asyncio.to_thread(load.run, seconds, bench.threads, bench.connections),
    )


def start_bench_gateway(
    bench: Bench, upstream: str, name: str = "bench-gateway", **env: str
) -> tuple[ManagedProcess, str]:
    """The stack's gateway code and settings on another port, with `upstream` in catalog's place (and
    `env` on top: the event loop, the worker count)."""
    port = free_port()
    proc = ManagedProcess(
        name,
        [sys.executable, "-m", "gateway"],
        bench.work_dir / "logs" / f"{name}.log",
        env={**bench.stack.service_env("gateway", port), "HUB_CATALOG_URL": upstream, **env},
    )
    url = f"http://127.0.0.1:{port}"
    proc.start().wait_until(lambda: http_ok(f"{url}/readyz"), timeout=60)
    return proc, url


async def run(bench: Bench) -> Section:
    """Throughput, latency and CPU of each way; the ratios gateway/nginx and gateway/plain proxy (CPU per
    request); a profile when either misses."""
    section = Section(2, "Gateway cost")
    owner = bench.owner
    assert owner is not None
    collection = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": "gateway-bench"})
    path = f"/v1/collections/{collection['collection']['id']}"
    catalog = bench.url("catalog_service")
    internal = {
        FORWARDED_HEADER: derived_credential(bench.stack.internal_secret, "forwarded"),
        PRINCIPAL_HEADER: owner.principal_json,
    }
    logs = bench.work_dir / "logs"
    started: list[ManagedProcess] = []
    results: dict[str, WrkResult] = {}
    cpu: dict[str, dict[str, float]] = {}
    try:
        trivial, trivial_url = await asyncio.to_thread(floor.start, "trivial", logs)
        started.append(trivial)
        gateway, gateway_url = await asyncio.to_thread(start_bench_gateway, bench, trivial_url)
        started.append(gateway)
        # The same gateway on asyncio's own loop, and with two workers: what each of those choices buys.
        asyncio_gateway, asyncio_gateway_url = await asyncio.to_thread(
            start_bench_gateway, bench, trivial_url, "bench-gateway-asyncio", HUB_UVLOOP="0"
        )
        started.append(asyncio_gateway)
        workers_gateway, workers_gateway_url = await asyncio.to_thread(
            start_bench_gateway, bench, trivial_url, "bench-gateway-workers", HUB_GATEWAY_WORKERS="2"
        )
        started.append(workers_gateway)
        nginx_trivial, nginx_trivial_url = await asyncio.to_thread(
            start_nginx, bench.work_dir / "nginx-trivial", trivial_url.removeprefix("http://")
        )
        started.append(nginx_trivial)
        aio_proxy, aio_proxy_url = await asyncio.to_thread(
            floor.start, "proxy", logs, "--upstream", trivial_url
        )
        started.append(aio_proxy)
        nginx_catalog, nginx_catalog_url = await asyncio.to_thread(
            start_nginx, bench.work_dir / "nginx-catalog", catalog.removeprefix("http://")
        )
        started.append(nginx_catalog)
        trivial_path = "/v1/collections/trivial"
        loads = {
            GATEWAY: Load(gateway_url, [trivial_path], headers=owner.headers()),
            NGINX: Load(nginx_trivial_url, [trivial_path]),
            PLAIN_PROXY: Load(aio_proxy_url, [trivial_path]),
            "trivial: direct": Load(trivial_url, [trivial_path]),
            ASYNCIO_GATEWAY: Load(asyncio_gateway_url, [trivial_path], headers=owner.headers()),
            WORKERS_GATEWAY: Load(workers_gateway_url, [trivial_path], headers=owner.headers()),
            "find_one: gateway (API key)": Load(bench.gateway, [path], headers=owner.headers()),
            "find_one: nginx (no auth)": Load(nginx_catalog_url, [path], headers=internal),
            "find_one: direct": Load(catalog, [path], headers=internal),
            OWN_ME: Load(bench.gateway, ["/v1/me"], headers=owner.headers()),
        }
        gw, catalog_pid = bench.pid("gateway"), bench.pid("catalog_service")
        metered = {
            GATEWAY: {"proxy": gateway.pid, "upstream": trivial.pid},
            NGINX: {"proxy": nginx_trivial.pid, "upstream": trivial.pid},
            PLAIN_PROXY: {"proxy": aio_proxy.pid, "upstream": trivial.pid},
            "trivial: direct": {"upstream": trivial.pid},
            ASYNCIO_GATEWAY: {"proxy": asyncio_gateway.pid, "upstream": trivial.pid},
            # The parent and its workers (CpuMeter reads the process tree).
            WORKERS_GATEWAY: {"proxy": workers_gateway.pid, "upstream": trivial.pid},
            "find_one: gateway (API key)": {"proxy": gw, "upstream": catalog_pid},
            "find_one: nginx (no auth)": {"proxy": nginx_catalog.pid, "upstream": catalog_pid},
            "find_one: direct": {"upstream": catalog_pid},
            OWN_ME: {"proxy": gw},
        }
        if before_dir := os.environ.get(BEFORE_ENV):
            # PYTHONSAFEPATH: `-m gateway` must not import the working tree's package from the cwd.
            before, before_url = await asyncio.to_thread(
                start_bench_gateway,
                bench,
                trivial_url,
                "bench-gateway-before",
                PYTHONPATH=f"{before_dir}{os.pathsep}{floor.REPO}",
                PYTHONSAFEPATH="1",
            )
            started.append(before)
            loads[BEFORE] = Load(before_url, [trivial_path], headers=owner.headers())
            metered[BEFORE] = {"proxy": before.pid, "upstream": trivial.pid}
        # The targets' three are measured in turn, ROUNDS times, and each summed over its rounds: what
        # else runs on the machine then weighs on all three alike.
        in_turn = (*TARGET_LOADS, BEFORE) if before_dir else TARGET_LOADS
        order = [label for _ in range(ROUNDS) for label in in_turn]
        order += [label for label in loads if label not in in_turn]
        runs: dict[str, list[tuple[WrkResult, dict[str, float]]]] = {}
        for label in order:
            meter = CpuMeter(metered[label])
            result = await measure(bench, loads[label], meter)
            runs.setdefault(label, []).append((result, meter.used))
            print(f"    {label}: {result.rps:.0f} req/s", flush=True)
        for label in loads:
            results[label] = combined([result for result, _ in runs[label]])
            cpu[label] = {
                name: sum(used[name] for _, used in runs[label]) / max(1, results[label].requests) * 1e6
                for name in metered[label]
            }
        trivial_ratio = ratio(results[GATEWAY].rps, results[NGINX].rps)
        find_ratio = ratio(
            results["find_one: gateway (API key)"].rps, results["find_one: nginx (no auth)"].rps
        )
        cpu_ratio = ratio(cpu[GATEWAY].get("proxy"), cpu[PLAIN_PROXY].get("proxy"))
        trivial_ok = (trivial_ratio or 0) >= TARGET
        cpu_ok = cpu_ratio is not None and cpu_ratio <= CPU_TARGET
        if not (trivial_ok and cpu_ok):
            section.profiles += await profile_under(
                bench, loads[GATEWAY], {"gateway": gateway.pid}, "gateway"
            )
    finally:
        for proc in reversed(started):
            await asyncio.to_thread(proc.stop)
    table = section.table(
        "Throughput and latency (wrk, same machine, same run)",
        [
            "route",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "proxy CPU µs/req",
            "upstream CPU µs/req",
            "vs nginx",
            "vs direct",
            "proxy CPU vs plain proxy",
            "target",
            "verdict",
        ],
    )
    references = {"trivial": NGINX, "find_one": "find_one: nginx (no auth)"}
    directs = {"trivial": "trivial: direct", "find_one": "find_one: direct"}
    plain_cpu = cpu[PLAIN_PROXY].get("proxy")
    for label, result in results.items():
        kind = label.split(":")[0]
        vs_nginx = ratio(result.rps, results[references[kind]].rps) if kind in references else None
        vs_plain = ratio(cpu[label].get("proxy"), plain_cpu) if kind == "trivial" else None
        if label == GATEWAY:
            target = f">= {TARGET}x nginx; CPU <= {CPU_TARGET}x plain proxy"
            verdict = f"{PASS if trivial_ok else MISS}; {PASS if cpu_ok else MISS}"
        else:
            target, verdict = ("info" if "gateway" in label else "reference"), "—"
        table.add(
            label,
            result.rps,
            result.p50_ms,
            result.p99_ms,
            result.non_2xx + result.socket_errors,
            cpu[label].get("proxy"),
            cpu[label].get("upstream"),
            vs_nginx,
            ratio(result.rps, results[directs[kind]].rps) if kind in directs else None,
            vs_plain,
            target,
            verdict,
        )
    section.summary = (
        f"wrk -t{bench.threads} -c{bench.connections}, {bench.seconds:.0f} s each after a 1 s warm-up; "
        f"the gateway, nginx and the plain proxy on the trivial route in turn, {ROUNDS} rounds, summed. "
        "Targets, for an authenticated request through the gateway (one worker) to a trivial service route: "
        f">= {TARGET}x the throughput of the same route through nginx as a plain reverse proxy (no auth), "
        f"and at most {CPU_TARGET}x the CPU per request of a plain aiohttp client-session proxy (no auth) "
        "in front of the same upstream. The issue's reference point: the plain aiohttp proxy reached "
        "about 0.28x of nginx on this machine; it is measured again here, in the same run."
    )
    aio = ratio(results[PLAIN_PROXY].rps, results[NGINX].rps)
    section.notes.append(
        f"Trivial route: gateway/nginx = {trivial_ratio:.2f}x ({'meets' if trivial_ok else 'misses'} "
        f"{TARGET}x); plain aiohttp proxy/nginx = {aio:.2f}x. With one `find_one` on nx-27017 behind it the "
        f"upstream dominates: gateway/nginx = {find_ratio:.2f}x."
    )
    gateway_cpu = cpu[GATEWAY].get("proxy", 0)
    section.notes.append(
        f"CPU per proxied request (user+system time of the process over the measured run / requests): "
        f"gateway {gateway_cpu:.0f} µs, on asyncio's loop {cpu[ASYNCIO_GATEWAY].get('proxy', 0):.0f} µs, "
        f"plain aiohttp proxy {plain_cpu or 0:.0f} µs, nginx {cpu[NGINX].get('proxy', 0):.0f} µs: "
        f"gateway/plain proxy = {cpu_ratio or 0:.2f}x ({'meets' if cpu_ok else 'misses'} {CPU_TARGET}x). "
        "The plain proxy runs on asyncio's loop, the gateway on uvloop; the gateway authenticates, "
        "checks the path, counts metrics and adds the principal's headers besides."
    )
    asyncio_ratio = ratio(results[ASYNCIO_GATEWAY].rps, results[NGINX].rps)
    workers_ratio = ratio(results[WORKERS_GATEWAY].rps, results[NGINX].rps)
    section.notes.append(
        f"The same gateway on asyncio's loop (`HUB_UVLOOP=0`) reaches {asyncio_ratio or 0:.2f}x nginx, with "
        f"two workers (`HUB_GATEWAY_WORKERS=2`) {workers_ratio or 0:.2f}x: on 2 cores shared with wrk and "
        "the upstream, a second worker has little idle CPU to use; it pays where the gateway has cores of "
        "its own."
    )
    if BEFORE in results:
        before_cpu = cpu[BEFORE].get("proxy", 0)
        section.notes.append(
            f"Before/after ({BEFORE_ENV}={os.environ.get(BEFORE_ENV)}): "
            f"{results[BEFORE].rps:.0f} -> {results[GATEWAY].rps:.0f} req/s, {before_cpu:.0f} -> "
            f"{gateway_cpu:.0f} µs of CPU per request."
        )
    if not trivial_ok:
        section.notes.append(
            f"Why it misses: the gateway forwards over its own HTTP/1.1 connections (gateway/upstream.py), "
            f"past the plain aiohttp proxy ({aio:.2f}x of nginx); what is left is mostly aiohttp's server "
            f"itself (parsing, routing, writing the answer: the gateway's own `GET /v1/me`, which forwards "
            f"nothing, costs {cpu[OWN_ME].get('proxy', 0):.0f} µs a request) and the two socket writes "
            "(profile below). Reaching 0.5x on 2 shared cores would take a second worker on a core of its "
            "own, or authenticating in front of an nginx/Envoy data plane (`auth_request` with the same "
            "0.5 s cache); the design keeps aiohttp's server for the gateway."
        )
    section.notes.append(
        "wrk, nginx, the gateway, the upstream, access_service and nx-27017 share the 2 cores, so a proxy's "
        "own CPU comes out of the upstream's: the ratios, not the absolute numbers, carry over. The bench "
        "gateway caches each principal for 0.5 s, so about 2 lookups per second reach access_service."
    )
    if section.profiles:
        section.notes.append(
            "A target was missed, so the gateway was profiled under the trivial-route load (py-spy, "
            "100 Hz, 10 s; sampling slows it while it records, the figures above were taken without): "
            "where its time goes is below."
        )
    section.data = {
        "results": {label: {**r.as_dict(), "cpu_us_per_request": cpu[label]} for label, r in results.items()},
        "ratio_trivial_gateway_vs_nginx": trivial_ratio,
        "ratio_find_one_gateway_vs_nginx": find_ratio,
        "ratio_trivial_aiohttp_proxy_vs_nginx": aio,
        "ratio_trivial_asyncio_gateway_vs_nginx": asyncio_ratio,
        "ratio_trivial_two_workers_gateway_vs_nginx": workers_ratio,
        "ratio_cpu_per_request_gateway_vs_plain_proxy": cpu_ratio,
        "verdicts": [
            (f"2: gateway (auth) >= {TARGET}x nginx on a trivial route", PASS if trivial_ok else MISS),
            (
                f"2: gateway CPU per request <= {CPU_TARGET}x a plain aiohttp proxy's",
                PASS if cpu_ok else MISS,
            ),
        ],
    }
    return section
