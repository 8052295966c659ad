"""Tracing on a stack of real processes: one dialect-A member add is one trace, gateway to history's write.

The stack's four processes run with the standard variables an operator sets (`OTEL_TRACES_EXPORTER=otlp`,
an OTLP/HTTP endpoint) and export to a collector this test serves: an OTLP receiver that keeps the spans
in memory. So the trace is proven over what production runs: real HTTP between the services, real
nx-27017 and nats-server, each process's own provider and exporter, nothing mocked in between.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig
from tests.support import UNLIMITED_RATES, Hub, find_event

KINDS = {
    SpanProto.SPAN_KIND_SERVER: "server",
    SpanProto.SPAN_KIND_CLIENT: "client",
    SpanProto.SPAN_KIND_PRODUCER: "producer",
    SpanProto.SPAN_KIND_CONSUMER: "consumer",
    SpanProto.SPAN_KIND_INTERNAL: "internal",
}


def _value(value: AnyValue) -> Any:
    """A span attribute's value as Python."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass(frozen=True)
class Span:
    """One received span: which service sent it, and where it sits in its trace."""

    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) keeping every span it is sent."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        """Store one export request's spans; answer as a collector does."""
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans += [
                    Span(
                        service=str(resource.get("service.name")),
                        name=span.name,
                        kind=KINDS.get(span.kind, "unspecified"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                    for span in scope.spans
                ]
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of one trace received so far."""
        return [span for span in self.spans if span.trace_id == trace_id]


@pytest.fixture(scope="module")
async def collector() -> AsyncIterator[Collector]:
    """The OTLP receiver, on a loopback port."""
    state = Collector()
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_post("/v1/traces", state.receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture(scope="module")
async def traced_stack(
    mongodb_url: str, nats_url: str, collector: Collector, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmbeddedStack]:
    """A stack of its own with tracing on, as docs/operations.md turns it on, exporting to `collector`."""
    config = StackConfig(
        data_dir=Path(tmp_path_factory.mktemp("traced")),
        port=free_port(),
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        admin_api_key=f"traced-admin-{secrets.token_urlsafe(16)}",
        database_prefix=f"tr_{uuid.uuid4().hex[:8]}",
        extra_env={
            "HUB_CONSUMER_DELIVER_POLICY": "new",
            **UNLIMITED_RATES,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "1",
            # Export within 0.1 s rather than the default 5 s, so the test waits less.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    stack = EmbeddedStack(config)
    # In a thread: the collector answers on this loop while the processes start (they export at start).
    await asyncio.to_thread(stack.start)
    try:
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)


async def catalog_commands(http: ClientSession, stack: EmbeddedStack) -> float:
    """MongoDB commands catalog_service has sent on the request path so far."""
    text = await (await http.get(f"{stack.service_urls['catalog_service']}/metrics")).text()
    pattern = r'^mongo_commands_total\{client="api",command="\w+",service="catalog_service"\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


@dataclass(frozen=True)
class MemberAdd:
    """What one dialect-A member add left behind."""

    path: str
    created_request_id: str
    commands: float


async def add_members(hub: Hub, stack: EmbeddedStack) -> MemberAdd:
    """Create a project and a collection, then add two nodes to it in dialect A."""
    slug = f"tr-{uuid.uuid4().hex[:8]}"
    assert (await hub.call("POST", "/admin/namespaces", json={"slug": slug})).status == 201
    assert (await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": "p"})).status == 201
    base, name = f"/namespaces/{slug}/projects/p/collections", f"c-{uuid.uuid4().hex[:8]}"
    created = await hub.call("POST", base, json={"name": name})
    assert created.status == 201
    before = await catalog_commands(hub.http, stack)
    path = f"{base}/{name}/members"
    added = await hub.call("POST", path, json={"add": ["node-1", "node-2"]})
    assert added.status == 200, await added.text()
    commands = await catalog_commands(hub.http, stack) - before
    return MemberAdd(path, created.headers["X-Request-ID"], commands)


async def trace_of_request(collector: Collector, path: str, within: float = 10.0) -> str:
    """The trace id of the gateway's span for the one request to `path`, once it has arrived."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        ids = {
            s.trace_id
            for s in collector.spans
            if s.service == "gateway"
            and s.kind == "server"
            and path in f"{s.attributes.get('url.path', '')} {s.attributes.get('http.target', '')}"
        }
        if ids:
            assert len(ids) == 1, ids
            return ids.pop()
        assert asyncio.get_running_loop().time() < deadline, "the gateway's span never arrived"
        await asyncio.sleep(0.1)


async def whole_trace(collector: Collector, trace_id: str, within: float = 20.0) -> list[Span]:
    """The trace once history's consumer span and its writes have arrived (spans come in batches)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        spans = collector.trace(trace_id)
        consumed = [s for s in spans if s.service == "history_service" and s.kind == "consumer"]
        if consumed and any(s.parent_id == consumed[0].span_id for s in spans):
            await asyncio.sleep(0.5)  # what the same batch still holds
            return collector.trace(trace_id)
        assert asyncio.get_running_loop().time() < deadline, sorted((s.service, s.name) for s in spans)
        await asyncio.sleep(0.1)


async def spans_of(collector: Collector, trace_id: str, within: float = 10.0) -> list[Span]:
    """The spans of a trace, once some have arrived (an exporter sends every 0.1 s here)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        spans = collector.trace(trace_id)
        if spans or asyncio.get_running_loop().time() > deadline:
            return spans
        await asyncio.sleep(0.1)


def descends(span: Span, ancestor: Span, by_id: dict[str, Span]) -> bool:
    """Whether `ancestor` is on the path from `span` to its trace's root."""
    current = by_id.get(span.parent_id)
    while current is not None:
        if current.span_id == ancestor.span_id:
            return True
        current = by_id.get(current.parent_id)
    return False


async def test_a_member_add_is_one_trace_from_the_gateway_to_the_history_write(
    traced_stack: EmbeddedStack, collector: Collector, nats_url: str
) -> None:
    """One dialect-A member add: gateway, catalog and its MongoDB commands, the relay's publish, history's
    consume and its writes are one connected trace, whose id is the request id and the event's."""
    async with ClientSession() as http:
        hub = Hub(traced_stack.gateway_url, http, traced_stack.admin_api_key)
        add = await add_members(hub, traced_stack)
    created = await spans_of(collector, add.created_request_id)
    assert created, "with tracing on, the X-Request-ID the gateway answers is the trace id"
    trace_id = await trace_of_request(collector, add.path)
    spans = await whole_trace(collector, trace_id)
    by_id = {span.span_id: span for span in spans}

    roots = [span for span in spans if span.parent_id not in by_id]
    assert [(r.service, r.kind) for r in roots] == [("gateway", "server")], "one root: the gateway's request"
    (gateway,) = roots
    (catalog,) = [s for s in spans if s.service == "catalog_service" and s.kind == "server"]
    assert catalog.attributes["http.route"].endswith("/collections/{name}/members")
    assert by_id[catalog.parent_id].service == "gateway", "catalog's span is the gateway's call's child"
    assert by_id[catalog.parent_id].kind == "client"

    catalog_mongo = [
        s
        for s in spans
        if s.service == "catalog_service" and s.kind == "client" and descends(s, catalog, by_id)
    ]
    assert catalog_mongo, "catalog's MongoDB commands are spans of the request"
    assert all(s.attributes.get("db.system") == "mongodb" for s in catalog_mongo)
    assert len(catalog_mongo) == add.commands, "one span per command, and no command added by tracing"

    (publish,) = [s for s in spans if s.kind == "producer"]
    assert (publish.service, publish.name) == (
        "catalog_service",
        "publish hub.catalog.collection.members_added",
    )
    assert descends(publish, catalog, by_id), "the relay publishes in the trace of the request that wrote"

    (consume,) = [s for s in spans if s.kind == "consumer"]
    assert consume.service == "history_service"
    assert consume.parent_id == publish.span_id, "history's consume span follows the message's headers"
    history_writes = [s for s in spans if s.parent_id == consume.span_id and s.kind == "client"]
    history_db = f"{traced_stack.config.database_prefix}_history"
    assert f"{history_db}.insert" in [s.name for s in history_writes], "the projection's write ends it"
    assert all(s.trace_id == gateway.trace_id for s in spans)

    event = await find_event(
        nats_url, "hub.catalog.collection.members_added", lambda e: e.get("request_id") == trace_id
    )
    assert event["data"]["ids"] == ["node-1", "node-2"], "the event keeps its request's trace id"


async def test_tracing_adds_no_mongodb_command(
    traced_stack: EmbeddedStack, stack: EmbeddedStack, hub: Hub
) -> None:
    """The same member add costs catalog the same MongoDB commands with tracing on as with it off."""
    untraced = await add_members(hub, stack)
    async with ClientSession() as http:
        traced = await add_members(
            Hub(traced_stack.gateway_url, http, traced_stack.admin_api_key), traced_stack
        )
    assert traced.commands == untraced.commands > 0
