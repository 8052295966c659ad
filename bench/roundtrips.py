"""Section 1: MongoDB commands per request for every public endpoint, beside dialect A's document.

Each endpoint is called twice with fresh arguments, as a client would (new members to add, members that
are there to remove, a collection that exists to delete): the first call warms the caches, the second is
counted. Counted are `mongo_commands_total{client="api"}` deltas of the services on the request path;
the outbox relay (`client="relay"`) and consumers (`client="consumer"`) work after the answer and are
left out here (section 3 counts them per write under load).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.harness import SERVICES, Actor, Bench, client_total, delta
from bench.report import MISS, PASS, SKIP, Section

AUTH_CACHE_SECONDS = 0.5  # the gateway's default auth_cache_ttl_seconds
Request = tuple[str, str, Any]  # method, path, JSON body (None for none)

# What dialect A's document (000_c1f7ff3b7241616a.txt) says each operation spends.
REFERENCE = {
    "create": ("3-4", 3.0),
    "list": ("4 (3 eff.)", 3.0),
    "get": ("3", 3.0),
    "update": ("4", 4.0),
    "delete": ("4", 4.0),
    "members": ("4", 4.0),
}
# Without a client of its own for history's consumer, its projection writes would count as `api`;
# then history's counter is read only for history's own (read-only) routes.
ON_PATH_SHARED_CLIENT = {
    "gateway": ("catalog_service", "access_service"),
    "catalog": ("catalog_service", "access_service"),
    "access": ("catalog_service", "access_service"),
    "history": SERVICES,
}


@dataclass
class Endpoint:
    """One public endpoint and how to call it with fresh arguments each time."""

    label: str
    group: str
    owner: str  # the service the gateway routes it to (or "gateway")
    operation: str  # the dialect-A operation it corresponds to
    actor: Actor
    make: Callable[[], Request]
    warm: Callable[[], Request] | None = None


@dataclass
class Spent:
    """What one counted call cost: per service, commands by name."""

    status: int
    commands: dict[str, dict[str, float]]
    body: Any

    def total(self) -> float:
        """All request-path commands."""
        return sum(sum(by_name.values()) for by_name in self.commands.values())

    def breakdown(self) -> str:
        """`catalog 1 (find 1), access 2 (find 2)`."""
        parts = []
        for service, by_name in self.commands.items():
            if by_name:
                names = ", ".join(f"{name} {n:.0f}" for name, n in by_name.items())
                parts.append(f"{service.removesuffix('_service')} {sum(by_name.values()):.0f} ({names})")
        return "; ".join(parts) or "none"

    def message(self) -> str:
        """The error message of an error body (either dialect's shape)."""
        if isinstance(self.body, dict):
            return str(self.body.get("error") or self.body.get("message") or self.body)
        return str(self.body)[:160]


async def call_counted(bench: Bench, endpoint: Endpoint, services: tuple[str, ...]) -> Spent:
    """Quiesce, warm, then count one call."""
    await bench.quiesce()
    # Let the gateway's principal cache (0.5 s) expire, so that the warm-up call fills it afresh and the
    # counted call, made right after, is sure to find it: a lookup is counted apart, as a cache miss.
    await asyncio.sleep(AUTH_CACHE_SECONDS + 0.05)
    method, path, body = (endpoint.warm or endpoint.make)()
    await bench.call(method, path, actor=endpoint.actor, json=body)
    before = await bench.all_counts()
    method, path, body = endpoint.make()
    status, answer = await bench.call(method, path, actor=endpoint.actor, json=body)
    after = await bench.all_counts()
    spent = {service: delta(before[service], after[service], "api") for service in services}
    return Spent(status, spent, answer)


async def registered(bench: Bench, kind: str, count: int, actor: Actor) -> list[str]:
    """Ids of `count` new assets or models."""
    ids = []
    for _ in range(count):
        body = await bench.ok(
            "POST", f"/v1/{kind}", actor=actor, json={"name": "bench", "url": "https://cdn.example/x.png"}
        )
        ids.append(body["id"])
    return ids


async def endpoints(bench: Bench) -> list[Endpoint]:
    """Every public endpoint with the fixtures it needs."""
    admin, owner, a_actor = bench.admin, bench.owner, bench.a_actor
    assert admin is not None
    assert owner is not None
    assert a_actor is not None
    fresh = itertools.count()
    a = bench.a_base
    tag = uuid.uuid4().hex[:6]

    def n() -> int:
        return next(fresh)

    assets = await registered(bench, "assets", 12, owner)
    models = await registered(bench, "models", 6, owner)
    doomed_assets = await registered(bench, "assets", 2, owner)
    doomed_models = await registered(bench, "models", 2, owner)
    await bench.ok("POST", a, actor=a_actor, json={"name": "rt", "members": [f"m{i}" for i in range(4)]})
    doomed_a = [f"doomed-{i}" for i in range(2)]
    for name in doomed_a:
        await bench.ok("POST", a, actor=a_actor, json={"name": name})
    b = await bench.ok("POST", "/api/v2/collections", actor=owner, json={"title": "rt-b"})
    bid = b["collection"]["id"]
    await bench.ok("PUT", f"/v1/collections/{bid}/assets", actor=owner, json={"assetIds": assets[:4]})
    await bench.ok("PUT", f"/v1/collections/{bid}/models", actor=owner, json={"modelIds": models[:2]})
    doomed_b, doomed_c = [], []
    for _ in range(2):
        made = await bench.ok("POST", "/api/v2/collections", actor=owner, json={"title": "doomed"})
        doomed_b.append(made["collection"]["id"])
        made = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": "doomed"})
        doomed_c.append(made["collection"]["id"])
    listing = await bench.ok("GET", "/v1/collections?pageSize=2", actor=owner)
    token = listing.get("nextPaginationToken", "")
    others = [await bench.create_actor(f"other{i}") for i in range(8)]
    shared_users = iter(o.user_id for o in others[:2])
    for other in others[2:4]:
        await bench.call("POST", f"/api/v2/collections/{bid}/users/{other.user_id}", actor=owner)
    unshared_users = iter(o.user_id for o in others[2:4])
    revocable = [await bench.ok("POST", f"/admin/users/{others[0].user_id}/api-keys", json={}, expect=201)]
    revocable.append(
        await bench.ok("POST", f"/admin/users/{others[0].user_id}/api-keys", json={}, expect=201)
    )
    groups: list[int] = []
    for i in range(4):
        status, group = await bench.call("POST", "/admin/groups", json={"name": f"bench-{tag}-{i}"})
        if status == 201:
            groups.append(int(group["id"]))
    group = groups[0] if groups else 0
    group_members = iter(o.user_id for o in others[4:6])
    for other in others[6:8]:
        await bench.call("POST", f"/admin/groups/{group}/members", json={"user_ids": [other.user_id]})
    group_leavers = iter(o.user_id for o in others[6:8])
    linked_groups = iter(groups[0:2] if len(groups) >= 2 else [0, 0])
    for g in groups[2:4]:
        await bench.call("POST", f"/api/v2/collections/{bid}/user_groups/{g}", actor=owner)
    unlinked_groups = iter(groups[2:4] if len(groups) >= 4 else [0, 0])
    role_users = iter(o.user_id for o in others[4:6])
    unrole_users = iter(o.user_id for o in others[4:6])
    members_path = f"/admin/namespaces/{bench.namespace}/projects/{bench.project_slug}/members"
    removable = iter([["m0"], ["m1"]])
    b_assets, b_removals = iter(assets[4:6]), iter(assets[1:3])
    c_assets, c_removals = iter([[assets[6]], [assets[7]]]), iter([[assets[4]], [assets[5]]])
    c_models, c_model_removals = iter([[models[2]], [models[3]]]), iter([[models[0]], [models[1]]])
    asset_ids, model_ids = iter(doomed_assets), iter(doomed_models)
    doomed_b_ids, doomed_c_ids, doomed_a_names = iter(doomed_b), iter(doomed_c), iter(doomed_a)
    revocable_ids = iter(k["id"] for k in revocable)
    bench.shared["rt_collection"] = bid

    def e(
        label: str,
        kind: str,
        actor: Actor,
        make: Callable[[], Request],
        warm: Callable[[], Request] | None = None,
    ) -> Endpoint:
        group, served_by, operation = kind.split()  # "dialect service operation"
        return Endpoint(label, group, served_by, operation, actor, make, warm)

    v2 = f"/api/v2/collections/{bid}"
    return [
        e("GET /v1/me", "gateway gateway get", owner, lambda: ("GET", "/v1/me", None)),
        e(
            "POST /admin/namespaces",
            "admin catalog create",
            admin,
            lambda: ("POST", "/admin/namespaces", {"slug": f"ns-{tag}-{n()}"}),
        ),
        e(
            "POST /admin/namespaces/:ns/projects",
            "admin catalog create",
            admin,
            lambda: ("POST", f"/admin/namespaces/{bench.namespace}/projects", {"slug": f"p-{n()}"}),
        ),
        e(
            "POST /v1/assets",
            "registry catalog create",
            owner,
            lambda: ("POST", "/v1/assets", {"name": "a", "url": "https://cdn.example/a.png"}),
        ),
        e(
            "GET /v1/assets/:id",
            "registry catalog get",
            owner,
            lambda: ("GET", f"/v1/assets/{assets[0]}", None),
        ),
        e(
            "DELETE /v1/assets/:id",
            "registry catalog delete",
            owner,
            lambda: ("DELETE", f"/v1/assets/{next(asset_ids)}", None),
        ),
        e(
            "POST /v1/models",
            "registry catalog create",
            owner,
            lambda: ("POST", "/v1/models", {"name": "m"}),
        ),
        e(
            "GET /v1/models/:id",
            "registry catalog get",
            owner,
            lambda: ("GET", f"/v1/models/{models[0]}", None),
        ),
        e(
            "DELETE /v1/models/:id",
            "registry catalog delete",
            owner,
            lambda: ("DELETE", f"/v1/models/{next(model_ids)}", None),
        ),
        e(
            "POST .../datasets",
            "A catalog create",
            a_actor,
            lambda: ("POST", a.removesuffix("/collections") + "/datasets", {"name": f"d{n()}"}),
        ),
        e(
            "POST .../collections",
            "A catalog create",
            a_actor,
            lambda: ("POST", a, {"name": f"new-{n()}"}),
        ),
        e("GET .../collections", "A catalog list", a_actor, lambda: ("GET", a, None)),
        e("GET .../collections/:name", "A catalog get", a_actor, lambda: ("GET", f"{a}/rt", None)),
        e(
            "PATCH .../collections/:name",
            "A catalog update",
            a_actor,
            lambda: ("PATCH", f"{a}/rt", {"description": f"d{n()}"}),
        ),
        e(
            "DELETE .../collections/:name",
            "A catalog delete",
            a_actor,
            lambda: ("DELETE", f"{a}/{next(doomed_a_names)}", None),
        ),
        e(
            "POST .../collections/:name/members",
            "A catalog members",
            a_actor,
            lambda: ("POST", f"{a}/rt/members", {"add": [f"new-{n()}"]}),
        ),
        e(
            "DELETE .../collections/:name/members",
            "A catalog members",
            a_actor,
            lambda: ("DELETE", f"{a}/rt/members", {"remove": next(removable)}),
        ),
        e(
            "GET /api/v2/collections",
            "B catalog list",
            owner,
            lambda: ("GET", "/api/v2/collections", None),
        ),
        e(
            "POST /api/v2/collections",
            "B catalog create",
            owner,
            lambda: ("POST", "/api/v2/collections", {"title": "same title"}),
        ),
        e("GET /api/v2/collections/:id", "B catalog get", owner, lambda: ("GET", v2, None)),
        e(
            "PUT /api/v2/collections/:id",
            "B catalog update",
            owner,
            lambda: ("PUT", v2, {"description": f"x{n()}"}),
        ),
        e(
            "DELETE /api/v2/collections/:id",
            "B catalog delete",
            owner,
            lambda: ("DELETE", f"/api/v2/collections/{next(doomed_b_ids)}", None),
        ),
        e(
            "POST /api/v2/collections/:id/assets",
            "B catalog members",
            owner,
            lambda: ("POST", f"{v2}/assets", {"asset_id": next(b_assets)}),
        ),
        e(
            "DELETE /api/v2/collections/:id/assets",
            "B catalog members",
            owner,
            lambda: ("DELETE", f"{v2}/assets", {"asset_id": next(b_removals)}),
        ),
        e(
            "GET /v1/collections",
            "C catalog list",
            owner,
            lambda: ("GET", "/v1/collections?pageSize=5", None),
        ),
        e(
            "GET /v1/collections?paginationToken",
            "C catalog list",
            owner,
            lambda: ("GET", f"/v1/collections?pageSize=5&paginationToken={token}", None),
        ),
        e(
            "POST /v1/collections",
            "C catalog create",
            owner,
            lambda: ("POST", "/v1/collections", {"name": "same name"}),
        ),
        e(
            "GET /v1/collections/:id",
            "C catalog get",
            owner,
            lambda: ("GET", f"/v1/collections/{bid}", None),
        ),
        e(
            "PUT /v1/collections/:id",
            "C catalog update",
            owner,
            lambda: ("PUT", f"/v1/collections/{bid}", {"name": f"rt-{n()}"}),
        ),
        e(
            "DELETE /v1/collections/:id",
            "C catalog delete",
            owner,
            lambda: ("DELETE", f"/v1/collections/{next(doomed_c_ids)}", None),
        ),
        e(
            "PUT /v1/collections/:id/assets",
            "C catalog members",
            owner,
            lambda: ("PUT", f"/v1/collections/{bid}/assets", {"assetIds": next(c_assets)}),
        ),
        e(
            "DELETE /v1/collections/:id/assets",
            "C catalog members",
            owner,
            lambda: ("DELETE", f"/v1/collections/{bid}/assets", {"assetIds": next(c_removals)}),
        ),
        e(
            "PUT /v1/collections/:id/models",
            "C catalog members",
            owner,
            lambda: ("PUT", f"/v1/collections/{bid}/models", {"modelIds": next(c_models)}),
        ),
        e(
            "DELETE /v1/collections/:id/models",
            "C catalog members",
            owner,
            lambda: ("DELETE", f"/v1/collections/{bid}/models", {"modelIds": next(c_model_removals)}),
        ),
        e(
            "POST /admin/users",
            "admin access create",
            admin,
            lambda: ("POST", "/admin/users", {"email": f"rt-{tag}-{n()}@example.com", "role": "user"}),
        ),
        e(
            "GET /admin/users/:id",
            "admin access get",
            admin,
            lambda: ("GET", f"/admin/users/{owner.user_id}", None),
        ),
        e(
            "POST /admin/users/:id/api-keys",
            "admin access create",
            admin,
            lambda: ("POST", f"/admin/users/{others[1].user_id}/api-keys", {"name": "rt"}),
        ),
        e(
            "DELETE /admin/api-keys/:id",
            "admin access delete",
            admin,
            lambda: ("DELETE", f"/admin/api-keys/{next(revocable_ids)}", None),
        ),
        e(
            "POST /admin/groups",
            "admin access create",
            admin,
            lambda: ("POST", "/admin/groups", {"name": f"g-{tag}-{n()}"}),
        ),
        e("GET /admin/groups", "admin access list", admin, lambda: ("GET", "/admin/groups", None)),
        e(
            "GET /admin/groups/:id",
            "admin access get",
            admin,
            lambda: ("GET", f"/admin/groups/{group}", None),
        ),
        e(
            "POST /admin/groups/:id/members",
            "admin access members",
            admin,
            lambda: ("POST", f"/admin/groups/{group}/members", {"user_ids": [next(group_members)]}),
        ),
        e(
            "DELETE /admin/groups/:id/members/:uid",
            "admin access members",
            admin,
            lambda: ("DELETE", f"/admin/groups/{group}/members/{next(group_leavers)}", None),
        ),
        e(
            "PUT /admin/.../projects/:p/members/:uid",
            "admin access update",
            admin,
            lambda: ("PUT", f"{members_path}/{next(role_users)}", {"role": "viewer"}),
        ),
        e(
            "DELETE /admin/.../projects/:p/members/:uid",
            "admin access delete",
            admin,
            lambda: ("DELETE", f"{members_path}/{next(unrole_users)}", None),
        ),
        e(
            "POST /api/v2/collections/:id/public",
            "B access update",
            owner,
            lambda: ("POST", f"{v2}/public", None),
            warm=lambda: ("POST", f"{v2}/private", None),
        ),
        e(
            "POST /api/v2/collections/:id/private",
            "B access update",
            owner,
            lambda: ("POST", f"{v2}/private", None),
            warm=lambda: ("POST", f"{v2}/public", None),
        ),
        e(
            "GET /api/v2/collections/:id/users",
            "B access get",
            owner,
            lambda: ("GET", f"{v2}/users", None),
        ),
        e(
            "GET /api/v2/collections/:id/all_users",
            "B access get",
            owner,
            lambda: ("GET", f"{v2}/all_users", None),
        ),
        e(
            "POST /api/v2/collections/:id/users/:uid",
            "B access update",
            owner,
            lambda: ("POST", f"{v2}/users/{next(shared_users)}", None),
        ),
        e(
            "DELETE /api/v2/collections/:id/users/:uid",
            "B access update",
            owner,
            lambda: ("DELETE", f"{v2}/users/{next(unshared_users)}", None),
        ),
        e(
            "POST /api/v2/collections/:id/guests",
            "B access update",
            owner,
            lambda: ("POST", f"{v2}/guests", {"email": f"guest-{tag}-{n()}@example.com"}),
        ),
        e(
            "GET /api/v2/collections/:id/user_groups",
            "B access get",
            owner,
            lambda: ("GET", f"{v2}/user_groups", None),
        ),
        e(
            "POST /api/v2/collections/:id/user_groups/:gid",
            "B access update",
            owner,
            lambda: ("POST", f"{v2}/user_groups/{next(linked_groups)}", None),
        ),
        e(
            "DELETE /api/v2/collections/:id/user_groups/:gid",
            "B access update",
            owner,
            lambda: ("DELETE", f"{v2}/user_groups/{next(unlinked_groups)}", None),
        ),
        e(
            "GET /api/v2/collections/:id/history/0",
            "B history list",
            owner,
            lambda: ("GET", f"{v2}/history/0", None),
        ),
        e(
            "GET /v1/collections/:id/history",
            "C history list",
            owner,
            lambda: ("GET", f"/v1/collections/{bid}/history?pageSize=5", None),
        ),
        e(
            "GET .../collections/:name/history",
            "A history list",
            a_actor,
            lambda: ("GET", f"{a}/rt/history", None),
        ),
    ]


def not_implemented(spent: Spent) -> bool:
    """A 404/405 from a route that does not exist (yet): the error middleware's generic message."""
    return (spent.status, spent.message()) in ((404, "not found"), (405, "method not allowed"))


async def run(bench: Bench) -> Section:
    """Measure every endpoint; the gateway's own commands; the cost of an auth-cache miss."""
    section = Section(1, "Round trips: MongoDB commands per request")
    section.summary = (
        'One warmed call per endpoint; `mongo_commands_total{client="api"}` deltas of the services on '
        "the request path. Reference: what dialect A's document spends on the corresponding operation "
        "(3-4). Target: <= 1 per request at steady state, 0 in the gateway."
    )
    table = section.table(
        "Commands per request (steady state)",
        [
            "endpoint",
            "dialect",
            "served by",
            "status",
            "commands",
            "by service",
            "reference (A doc)",
            "ratio",
            "target",
            "verdict",
        ],
    )
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    table_of_endpoints = await endpoints(bench)
    await bench.quiesce()
    counts = await bench.all_counts()
    consumer_apart = any(client == "consumer" for client, _ in counts["history_service"])
    for endpoint in table_of_endpoints:
        services = SERVICES if consumer_apart else ON_PATH_SHARED_CLIENT[endpoint.owner]
        spent = await call_counted(bench, endpoint, services)
        total = spent.total()
        ref_text, ref_value = REFERENCE[endpoint.operation]
        if spent.status >= 400:
            skipped = not_implemented(spent)
            result = SKIP if skipped else f"error {spent.status}"
            note = "no such route yet" if skipped else spent.message()[:80]
            table.add(
                endpoint.label,
                endpoint.group,
                endpoint.owner,
                spent.status,
                None,
                note,
                ref_text,
                None,
                "<= 1",
                result,
            )
        else:
            result = PASS if total <= 1 else MISS
            table.add(
                endpoint.label,
                endpoint.group,
                endpoint.owner,
                spent.status,
                int(total),
                spent.breakdown(),
                ref_text,
                total / ref_value,
                "<= 1",
                result,
            )
        rows.append(
            {
                "endpoint": endpoint.label,
                "dialect": endpoint.group,
                "served_by": endpoint.owner,
                "status": spent.status,
                "commands": spent.commands,
                "total": total,
                "reference": ref_text,
                "verdict": result,
                "message": spent.message()[:200],
                "breakdown": spent.breakdown(),
            }
        )
    gateway_text = await bench.metrics_text("gateway")
    gateway_samples = [line for line in gateway_text.splitlines() if line.startswith("mongo_commands_total{")]
    # An auth-cache miss: the gateway asks access_service, which reads the key (at most once per
    # credential per cache TTL, 0.5 s).
    await bench.quiesce()
    await asyncio.sleep(2 * AUTH_CACHE_SECONDS + 0.1)
    before = await bench.all_counts()
    await bench.call("GET", "/v1/me", actor=bench.owner)
    after = await bench.all_counts()
    miss = client_total(after["access_service"], "api") - client_total(before["access_service"], "api")
    extra = section.table("The gateway", ["figure", "value", "reference", "target", "verdict"])
    extra.add(
        "MongoDB commands sent by the gateway (all requests of this run)",
        len(gateway_samples),
        "the A document's 3-4 per request",
        "0",
        PASS if not gateway_samples else MISS,
    )
    extra.add(
        "access_service commands per auth-cache miss (once per key per 0.5 s)", int(miss), "—", "—", "info"
    )
    measured = [r for r in rows if r["verdict"] in (PASS, MISS)]
    missed = [r["endpoint"] for r in rows if r["verdict"] == MISS]
    skipped = [r["endpoint"] for r in rows if r["verdict"] == SKIP]
    errors = [
        f"{r['endpoint']} ({r['status']}: {r['message'][:80]})"
        for r in rows
        if str(r["verdict"]).startswith("error")
    ]
    section.notes.append(
        f"{len(measured)} endpoints measured, {len(measured) - len(missed)} at <= 1 command; "
        f"{len(skipped)} not answered yet, {len(errors)} answered an error "
        f"({time.monotonic() - started:.0f} s)."
    )
    if missed:
        section.notes.append(
            "Over target: "
            + "; ".join(f"{r['endpoint']} = {r['breakdown']}" for r in rows if r["verdict"] == MISS)
        )
    if skipped:
        section.notes.append("Skipped (404/405 from a route not built yet): " + "; ".join(skipped))
    if errors:
        section.notes.append("Answered an error, so not counted: " + "; ".join(errors))
    section.notes.append(
        "Counted: the `api` client of all three services (their consumers count under `consumer`)."
        if consumer_apart
        else "history_service's consumer counts its writes under `client=\"api\"`, so history's counter "
        "is read only for history's own read-only routes, after waiting for every counter to settle."
    )
    section.data = {
        "endpoints": rows,
        "gateway_mongo_samples": gateway_samples,
        "auth_cache_miss_access_commands": miss,
        "verdicts": [
            ("1: <= 1 command per request, every endpoint", PASS if not missed and measured else MISS),
            ("1: 0 commands in the gateway", PASS if not gateway_samples else MISS),
        ],
    }
    return section
