"""The floor pipeline: a minimal aiohttp proxy in front of a minimal aiohttp handler.

The handler sends exactly the MongoDB commands catalog_service sends for the same request (one for a read,
the three of a membership change plus the member listing of dialect A's answer), to the same server, and
answers the same shape; the proxy forwards like the gateway does, minus authentication. The
full stack is compared with this: what it spends beyond the floor is what its design costs.

    python -m bench.floor handler --port P --mongodb-url URL --read-db DB --write-db DB
    python -m bench.floor proxy --port P --upstream http://127.0.0.1:H
    python -m bench.floor trivial --port P      # answers every path as a service's /healthz does
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from pymongo import AsyncMongoClient

from catalog_service.member_repository import MemberRepository
from catalog_service.reader_views import ReaderViews, user_reader, view_key
from catalog_service.repository import WITHOUT_MEMBERS, CatalogRepository
from catalog_service.service import ListCursors
from catalog_service.view_repository import ViewRepository
from catalog_service.views import dialect_c
from collections_hub.processes import ManagedProcess, free_port, http_ok
from shared import event_types as ev
from shared.clock import timestamp
from shared.web import echo_exchange

REPO = str(Path(__file__).resolve().parent.parent)

Document = dict[str, Any]
MONGO_KEY = web.AppKey("mongo", AsyncMongoClient[Document])
SESSION_KEY = web.AppKey("session", ClientSession)
UPSTREAM_KEY = web.AppKey("upstream", str)
READ_DB_KEY = web.AppKey("read_db", str)
WRITE_DB_KEY = web.AppKey("write_db", str)


# --- the handler: one MongoDB command per request ---------------------------------------------------------
async def get_collection(request: web.Request) -> web.Response:
    """`find_one` by id, without the member arrays."""
    db = request.app[MONGO_KEY][request.app[READ_DB_KEY]]
    doc = await db["collections"].find_one(
        {"_id": request.match_info["cid"], "deleted": False}, WITHOUT_MEMBERS
    )
    if doc is None:
        raise web.HTTPNotFound
    return web.json_response({"collection": dialect_c(doc)})


async def list_collections(request: web.Request) -> web.Response:
    """A page as catalog reads it: the positions of the owner's view after the token's (one `_id $in`),
    then those collections by id (a second)."""
    db = request.app[MONGO_KEY][request.app[READ_DB_KEY]]
    page_size = int(request.query.get("pageSize", "10"))
    owner = int(request.query["owner"])
    # Signed tokens, verified as catalog verifies them (the secret comes from the bench's stack).
    cursors = ListCursors(os.environ.get("HUB_INTERNAL_SECRET", ""))
    token = request.query.get("paginationToken")
    after = cursors.decode_cursor(owner, token) if token else 0
    views = ReaderViews(ViewRepository(db), CatalogRepository(db))
    found = await views.page(view_key(user_reader(owner)), after, page_size)
    docs = await CatalogRepository(db).live_by_ids(found.ids, WITHOUT_MEMBERS)
    body: Document = {"collections": [dialect_c(doc) for doc in docs]}
    if after + len(found.ids) < found.size:
        body["nextPaginationToken"] = cursors.encode_cursor(owner, after + len(found.ids))
    return web.json_response(body)


async def add_members(request: web.Request) -> web.Response:
    """A dialect-A add as catalog makes it: begin, apply, finish (member_repository.py), then the list."""
    members = MemberRepository(request.app[MONGO_KEY][request.app[WRITE_DB_KEY]])
    ids = list(dict.fromkeys((await request.json())["add"]))
    cid = request.match_info["cid"]
    change = await members.begin(
        {"_id": cid},
        "node",
        add=True,
        count=len(ids),
        actor=0,
        now_ms=time.time_ns() // 1_000_000,
    )
    if change is None:
        raise web.HTTPNotFound
    changed = await members.apply(change, ids)
    event = ev.event(
        "catalog.collection.members_added",
        ev.ItemsChanged(kind="node", ids=changed),
        actor=0,
        collection_id=cid,
        project_id=change.collection["project_id"],
    )
    await members.finish(
        change,
        len(changed),
        {"$set": {"updated_at": timestamp()}},
        [event] if changed else [],
        WITHOUT_MEMBERS,
    )
    listed = [item async for item in members.item_ids(cid, "node")]
    return web.json_response({"members": listed, "added": len(changed), "total": len(listed)})


def create_handler_app(mongodb_url: str, read_db: str, write_db: str) -> web.Application:
    """The handler app on its own Mongo client."""
    app = web.Application()
    app[READ_DB_KEY] = read_db
    app[WRITE_DB_KEY] = write_db

    async def mongo(app: web.Application) -> AsyncIterator[None]:
        client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True, w=1)
        await client.admin.command("ping")
        app[MONGO_KEY] = client
        yield
        await client.close()

    app.cleanup_ctx.append(mongo)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/collections", list_collections)
    app.router.add_get("/v1/collections/{cid}", get_collection)
    app.router.add_post("/v1/collections/{cid}/members", add_members)
    return app


async def healthz(_request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})


# --- the proxy: a plain aiohttp client-session proxy ------------------------------------------------------
async def forward(request: web.Request) -> web.Response:
    """Forward method, path, query, body and content type; relay status, body and content type."""
    body = await request.read() if request.body_exists else None
    headers = {name: value for name in ("Content-Type", "Accept") if (value := request.headers.get(name))}
    async with request.app[SESSION_KEY].request(
        request.method,
        f"{request.app[UPSTREAM_KEY]}{request.rel_url.raw_path_qs}",
        data=body,
        headers=headers,
        allow_redirects=False,
    ) as upstream:
        payload = await upstream.read()
        response = web.Response(body=payload, status=upstream.status)
        response.headers["Content-Type"] = upstream.headers.get("Content-Type", "application/json")
        return response


def create_proxy_app(upstream: str) -> web.Application:
    """The proxy app with one pooled client session, as the gateway has."""
    app = web.Application()
    app[UPSTREAM_KEY] = upstream.rstrip("/")

    async def session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION_KEY] = ClientSession(
            connector=TCPConnector(limit=0, keepalive_timeout=30),
            timeout=ClientTimeout(total=10),
            auto_decompress=False,
        )
        yield
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


# --- starting them as processes (from the benchmark) -----------------------------------------------------
def start(role: str, log_dir: Path, *args: str, secret: str = "") -> tuple[ManagedProcess, str]:
    """Start one floor process on a free port (with the stack's internal secret, to verify its list tokens);
    return it and its base URL once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor", role, "--port", str(port), *args]
    env = {"PYTHONPATH": REPO, "HUB_INTERNAL_SECRET": secret}
    proc = ManagedProcess(f"floor-{role}", argv, log_dir / f"floor-{role}.log", env=env)
    url = f"http://127.0.0.1:{port}"
    proc.start().wait_until(lambda: http_ok(f"{url}/healthz"), timeout=30)
    return proc, url


# --- a trivial upstream: the cheapest route a service can have -------------------------------------------
def create_trivial_app() -> web.Application:
    """Every path answers `{"status": "ok"}`, as a service's `/healthz` does, echoing the gateway's
    exchange token as every service does."""
    app = web.Application()
    app.on_response_prepare.append(echo_exchange)
    app.router.add_route("*", "/{tail:.*}", healthz)
    return app


def main() -> None:
    """Run the handler, the proxy or the trivial upstream on loopback."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="role", required=True)
    handler = sub.add_parser("handler")
    handler.add_argument("--port", type=int, required=True)
    handler.add_argument("--mongodb-url", required=True)
    handler.add_argument("--read-db", required=True)
    handler.add_argument("--write-db", required=True)
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--port", type=int, required=True)
    proxy.add_argument("--upstream", required=True)
    trivial = sub.add_parser("trivial")
    trivial.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.role == "handler":
        app = create_handler_app(args.mongodb_url, args.read_db, args.write_db)
    elif args.role == "proxy":
        app = create_proxy_app(args.upstream)
    else:
        app = create_trivial_app()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
