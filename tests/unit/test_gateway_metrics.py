"""The gateway's request metrics, tallied in plain numbers and handed over at scrape time, expose exactly
what prometheus_client's own counter and histogram would for the same requests."""

from __future__ import annotations

import random

from prometheus_client import generate_latest

from gateway.middleware import RequestMetrics
from shared.metrics import Metrics, dialect_of, status_class

REQUESTS = [
    ("GET", "proxy:catalog", "/v1/collections/x", 200),
    ("GET", "proxy:catalog", "/v1/collections/y", 404),
    ("POST", "proxy:catalog", "/api/v2/collections", 200),
    ("GET", "proxy:history", "/namespaces/n/projects/p/collections/c/history", 200),
    ("GET", "/v1/me", "/v1/me", 200),
    ("GET", "unmatched", "/healthz", 200),
    ("PATCH", "proxy:catalog", "/namespaces/n/projects/p/collections/c", 400),
    ("GET", "proxy:catalog", "/v1/collections/x", 201),
]


def _series(metrics: Metrics) -> list[str]:
    """The exposition's sample lines, but the `_created` timestamps (set when a series first appears);
    sums to 9 significant digits (added in another order, floats differ in the last digits)."""
    text = generate_latest(metrics.registry).decode()
    lines = []
    for line in text.splitlines():
        if "_created" in line:
            continue
        if "_sum{" in line:
            name, value = line.rsplit(" ", 1)
            lines.append(f"{name} {float(value):.9g}")
        else:
            lines.append(line)
    return sorted(lines)


def test_the_tallies_expose_what_prometheus_clients_own_metrics_would() -> None:
    rng = random.Random(7)
    observations = [
        (*rng.choice(REQUESTS), rng.choice([0.0004, 0.001, 0.003, 0.02, 0.7, 3.0, 9.0])) for _ in range(500)
    ]
    reference = Metrics("gateway")
    for method, route, path, status, seconds in observations:
        reference.requests.labels("gateway", method, route, str(status)).inc()
        reference.latency.labels("gateway", method, route, dialect_of(path), status_class(status)).observe(
            seconds
        )
    tallied = Metrics("gateway")
    counts = RequestMetrics(tallied)
    for method, route, path, status, seconds in observations:
        counts.observe(method, route, path, status, seconds)
    assert _series(tallied) == _series(reference)
    assert any("http_request_duration_seconds_bucket" in line for line in _series(tallied))


def test_a_made_up_method_is_counted_as_other() -> None:
    """Any token is a method to aiohttp: a client sending new ones must not grow the label sets."""
    tallied = Metrics("gateway")
    counts = RequestMetrics(tallied)
    for n in range(100):
        counts.observe(f"X{n}", "proxy:catalog", "/v1/collections", 405, 0.001)
    lines = [line for line in _series(tallied) if line.startswith("http_requests_total")]
    assert lines == [
        'http_requests_total{method="other",route="proxy:catalog",service="gateway",status="405"} 100.0'
    ]
