"""The lists against the rules, end to end: random concurrent changes of everything that decides who sees a
collection (creates in all three dialects, deletes, moves between datasets, public and private, shares with
users, guests and groups, group joins and leaves, project roles), sent at once by several writers through
the gateway to two catalog replicas; after each round has been answered, every reader's B list, C list
(walked to the end) and A list of every project (with a JWT) is compared with a model of docs/access.md.
Public collections are readable by all but listed only where a share, a group, a role or ownership lists
them (docs/scale.md, "Not done yet"). One run also kills a catalog replica with -9 in the middle of a round
and waits, bounded, for recovery to bring every list back to the rules.

Issue 26 item 1 (a member leaving a group as the group is unshared) is also replayed on its own, 24 cases
at once. On the fan-out before d8a7cee both the random test and that one fail (a collection left in the
member's lists).

Short in `make test` (3 seeds x 4 rounds x 8 changes, one seed with a kill, about 25 s);
`HUB_LISTS_MODEL_E2E_RUNS=30` runs 30 seeds and 10 with a kill, `HUB_LISTS_MODEL_E2E_AUDIT_CASES` sets how
many audit cases run at once."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout
from pymongo import AsyncMongoClient

from catalog_service.projects import personal_project_id
from collections_hub.stack import EmbeddedStack
from shared.mongo import Document
from tests.faults.conftest import FaultStack
from tests.faults.test_member_faults import call
from tests.support import Hub, hs256_token, new_project, running_stack, unique_email

RUNS = int(os.environ.get("HUB_LISTS_MODEL_E2E_RUNS", "3"))
ROUNDS = 4
WIDTH = 8
USERS = 4
GROUPS = 2
LIVE_MAX = 8  # few collections, so that changes meet in the same views often
GUESTS_MAX = 2
ROLES = ("owner", "editor", "viewer")
CATALOG_KINDS = ["create", "delete", "move"]
ACCESS_KINDS = ["public", "share", "guest", "group", "member", "role", "pair"]
KINDS = CATALOG_KINDS + ACCESS_KINDS
# A crashed change is recovered within a second or two (production: 30 s stale, 5 s rounds).
RECOVERY = {"HUB_MEMBER_CHANGE_STALE_SECONDS": "1", "HUB_MEMBER_RECOVERY_INTERVAL_SECONDS": "0.3"}
FAST_EVENTS = {
    "HUB_CONSUMER_BACKOFF_SECONDS": "[3]",
    "HUB_CONSUMER_RETRY_BASE_SECONDS": "0.2",
    "HUB_CONSUMER_RETRY_CAP_SECONDS": "2",
}
# Answers that say nothing about whether a write landed: the connection broke, or no replica answered.
TRANSIENT = {0, 502, 503, 504}
RECOVERY_DEADLINE = 90.0
AUDIT_CASES = int(os.environ.get("HUB_LISTS_MODEL_E2E_AUDIT_CASES", "24"))

ProjectKey = tuple[str, str]  # (namespace slug, project slug)


@pytest.fixture(scope="module")
def replicated(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack with two catalog_service processes (the gateway spreads requests over them)."""
    with running_stack(
        tmp_path_factory.mktemp("lists-model"),
        mongodb_url,
        nats_url,
        "lm",
        extra_env={**RECOVERY, **FAST_EVENTS},
        replicas={"catalog_service": 2},
    ) as stack:
        yield stack


@pytest.fixture
async def two_catalogs(replicated: EmbeddedStack) -> AsyncIterator[FaultStack]:
    """Clients of the replicated stack: its gateway, and its databases for what the rules read. (It runs
    on the session's MongoDB and NATS: only a catalog replica is killed here.)"""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(replicated.mongodb_url, tz_aware=True)
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            yield FaultStack(replicated, Hub(replicated.gateway_url, http, replicated.admin_api_key), mongo)
    finally:
        await mongo.close()


@dataclass
class Project:
    """A project of the run: where dialect A addresses it, catalog's id of it, its datasets by id."""

    key: ProjectKey
    project_id: str
    datasets: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        """Dialect A's path of its collections."""
        return f"/namespaces/{self.key[0]}/projects/{self.key[1]}/collections"


@dataclass
class Collection:
    """What the rules need of a collection."""

    id: str
    name: str
    project: ProjectKey
    owner: int
    dataset: str | None
    deleted: bool = False
    public: bool = False


@dataclass
class Model:
    """The facts as the answered writes left them, and the rules of docs/access.md over them."""

    admin: int
    keys: dict[int, str]  # every actor's and reader's API key, the admin's too
    users: list[int]
    groups: list[int]
    projects: dict[ProjectKey, Project]
    guests: list[int] = field(default_factory=list)
    collections: dict[str, Collection] = field(default_factory=dict)
    user_shares: set[tuple[str, int]] = field(default_factory=set)  # users and guests
    group_shares: set[tuple[str, int]] = field(default_factory=set)
    members: set[tuple[int, int]] = field(default_factory=set)  # (group, user)
    roles: dict[tuple[ProjectKey, int], str] = field(default_factory=dict)

    def shared(self, user: int, c: Collection) -> bool:
        """Owned, shared with the user (or as a guest), or with a group of the user's."""
        return (
            c.owner == user
            or (c.id, user) in self.user_shares
            or any((c.id, g) in self.group_shares and (g, user) in self.members for g in self.groups)
        )

    def listed(self, user: int) -> set[str]:
        """The user's B and C lists: owned, shared with it, or in a project it holds a role on."""
        return {
            c.id
            for c in self.collections.values()
            if not c.deleted and (self.shared(user, c) or (c.project, user) in self.roles)
        }

    def listed_in(self, user: int, project: ProjectKey, dataset: str | None) -> set[str]:
        """The user's A list of a project (of one dataset): all of it with a role there, else what is its."""
        role = (project, user) in self.roles
        return {
            c.id
            for c in self.collections.values()
            if not c.deleted
            and c.project == project
            and (dataset is None or c.dataset == dataset)
            and (role or self.shared(user, c))
        }

    def readable(self, user: int, c: Collection) -> bool:
        """May the user read it (`GET /v1/collections/{id}`): listed, or public."""
        return not c.deleted and (c.public or self.shared(user, c) or (c.project, user) in self.roles)

    def live(self) -> list[Collection]:
        """The collections not deleted, in creation order."""
        return [c for c in self.collections.values() if not c.deleted]


@dataclass
class Run:
    """One seed's stack clients, model, random source and what went wrong."""

    faults: FaultStack
    model: Model
    rng: random.Random
    seed: int
    faulty: bool = False  # a replica may die this round: transient answers are retried
    problems: list[str] = field(default_factory=list)
    created: int = 0
    answered: int = 0  # first answers of this round's writes
    kill_after: int = 0  # the kill lands once this many have been answered (0: no kill this round)
    kill_now: asyncio.Event = field(default_factory=asyncio.Event)

    def first_answer(self) -> None:
        """Count a write's first answer; past `kill_after` of them, the round's kill may land."""
        self.answered += 1
        if self.kill_after and self.answered >= self.kill_after:
            self.kill_now.set()

    async def write(
        self,
        method: str,
        path: str,
        expected: int,
        *,
        actor: int,
        landed: frozenset[int] = frozenset(),
        json: Any = None,
    ) -> tuple[int, Any]:
        """One write that must answer `expected`. In a round with a fault, an answer that says nothing
        (TRANSIENT) is sent again until one does, and then `landed` statuses (the first attempt took
        effect: "already ...") count as success too."""
        kwargs: dict[str, Any] = {"key": self.model.keys[actor]}
        if json is not None:
            kwargs["json"] = json
        status, body = await call(self.faults, method, path, **kwargs)
        self.first_answer()
        retried = False
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while self.faulty and status in TRANSIENT and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # retry pacing while a replica restarts, not synchronisation
            retried = True
            status, body = await call(self.faults, method, path, **kwargs)
        if status != expected and not (retried and status in landed):
            self.problems.append(f"seed {self.seed}: {method} {path} {json} answered {status} {body}")
        return status, body

    def ok(self, status: int, expected: int, landed: frozenset[int] = frozenset()) -> bool:
        """Whether a write's answer means it took effect."""
        return status == expected or status in landed


async def setup(faults: FaultStack, seed: int) -> Model:
    """Fresh users with keys, groups, a namespace project with two datasets, and every personal project."""
    hub = faults.hub
    status, me = await call(faults, "GET", "/v1/me")
    assert status == 200, me
    admin = int(me["user_id"])
    keys = {admin: hub.admin_key}
    users = []
    for _ in range(USERS):
        user, key = await hub.user_with_key()
        users.append(int(user["id"]))
        keys[int(user["id"])] = key
    groups = []
    for _ in range(GROUPS):
        status, group = await call(
            faults, "POST", "/admin/groups", json={"name": f"g-{uuid.uuid4().hex[:8]}"}
        )
        assert status == 201, group
        groups.append(int(group["id"]))
    base = await new_project(hub, prefix=f"lm{seed}")
    slug = base.split("/")[2]
    datasets = []
    project_id = ""
    for name in ("d1", "d2"):
        status, dataset = await call(
            faults, "POST", f"/namespaces/{slug}/projects/p/datasets", json={"name": name}
        )
        assert status == 201, dataset
        datasets.append(str(dataset["id"]))
        project_id = str(dataset["projectId"])
    projects = {(slug, "p"): Project((slug, "p"), project_id, datasets)}
    for user_id in users:  # a personal project exists once its user has asked for it
        project = Project(("personal", f"user-{user_id}"), personal_project_id(user_id))
        status, _ = await call(faults, "GET", project.base, key=keys[user_id])
        assert status == 200
        projects[project.key] = project
    return Model(admin=admin, keys=keys, users=users, groups=groups, projects=projects)


class Planner:
    """Random changes of a round, none of two touching the same fact (so the model knows the outcome);
    each is planned now and applied to the model once its write has been answered."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.model = run.model
        self.rng = run.rng
        self.claimed: set[tuple[object, ...]] = set()

    def claim(self, *keys: tuple[object, ...]) -> bool:
        """Take these facts for one change of this round, if no other change holds any of them."""
        if any(key in self.claimed for key in keys):
            return False
        self.claimed.update(keys)
        return True

    def change(self) -> Awaitable[None]:
        """One random change (tries a few kinds until one fits this round's unclaimed facts)."""
        for _ in range(20):
            what = self.rng.choice(CATALOG_KINDS * 2 + ACCESS_KINDS if self.run.faulty else KINDS)
            live = [c for c in self.model.live() if ("delete", c.id) not in self.claimed]
            if what == "create" or not live:
                if len(self.model.live()) < LIVE_MAX * (2 if self.run.faulty else 1) or not live:
                    return self.create()
                continue
            planners: dict[str, Callable[[list[Collection]], Awaitable[None] | None]] = {
                "delete": self.delete,
                "move": self.move,
                "public": self.public,
                "share": self.share,
                "guest": self.guest,
                "group": self.group,
                "member": self.member,
                "role": self.role,
                "pair": self.pair,
            }
            if (planned := planners[what](live)) is not None:
                return planned
        return self.create()

    def actor_for(self, c: Collection) -> int:
        """Who may change or share the collection: its owner or the admin."""
        return self.rng.choice([c.owner, self.model.admin])

    # --- catalog: create, delete, move ---------------------------------------------------------------------
    def create(self) -> Awaitable[None]:
        """A collection made in B or C (the caller's personal project), or in A by the admin or an editor of
        the namespace project, or by the admin in a user's personal project (which that user then owns)."""
        run, model, rng = self.run, self.model, self.rng
        run.created += 1
        name = f"s{run.seed}-c{run.created}"
        how = rng.choice(["b", "c", "a", "a-personal"])
        namespace = next(key for key in model.projects if key[0] != "personal")
        if how in ("b", "c"):
            owner = rng.choice(model.users)
            actor, project, dataset = owner, model.projects[("personal", f"user-{owner}")], None
        elif how == "a":
            writers = [u for u in model.users if model.roles.get((namespace, u)) in ("owner", "editor")]
            writers = [u for u in writers if ("role", *namespace, u) not in self.claimed]
            actor = rng.choice([model.admin, *writers])
            self.claim(("role", *namespace, actor))  # its role stays as it is this round
            owner, project = actor, model.projects[namespace]
            dataset = rng.choice([None, *project.datasets])
        else:
            owner = rng.choice(model.users)
            actor, project, dataset = model.admin, model.projects[("personal", f"user-{owner}")], None

        async def run_it() -> None:
            collection_id = await self.create_with(how, name, actor, project, dataset)
            if collection_id is not None:
                model.collections[collection_id] = Collection(
                    collection_id, name, project.key, owner, dataset
                )

        return run_it()

    async def create_with(
        self, how: str, name: str, actor: int, project: Project, dataset: str | None
    ) -> str | None:
        """Send the create; under a fault, look the name up (as the admin) before sending it again."""
        run = self.run
        if how == "b":
            method, path, body, expected = "POST", "/api/v2/collections", {"title": name}, 200
        elif how == "c":
            method, path, body, expected = "POST", "/v1/collections", {"name": name}, 200
        else:
            method, path, expected = "POST", project.base, 201
            body = {"name": name, **({"datasetId": dataset} if dataset else {})}
        deadline = time.monotonic() + RECOVERY_DEADLINE
        first = True
        while True:
            status, answer = await call(run.faults, method, path, key=run.model.keys[actor], json=body)
            if first:
                run.first_answer()
                first = False
            if status == expected:
                return str(answer["id"] if how.startswith("a") else answer["collection"]["id"])
            if not (run.faulty and status in TRANSIENT | {409}) or time.monotonic() > deadline:
                run.problems.append(f"seed {run.seed}: create {name} ({how}) answered {status} {answer}")
                return None
            while True:  # did the first attempt land? (dialect A finds B and C titles by name too)
                await asyncio.sleep(0.2)  # retry pacing while a replica restarts
                found, doc = await call(run.faults, "GET", f"{project.base}/{name}")
                if found == 200:
                    return str(doc["id"])
                if found == 404:
                    break
                if time.monotonic() > deadline:
                    run.problems.append(f"seed {run.seed}: create {name}: look-up answered {found}")
                    return None

    def delete(self, live: list[Collection]) -> Awaitable[None] | None:
        """A soft delete in one of the three dialects, by the owner or the admin."""
        c = self.rng.choice(live)
        claims: list[tuple[object, ...]] = [("c", c.id), ("delete", c.id)]
        claims += [("share", c.id, "u", u) for u in [*self.model.users, *self.model.guests]]
        claims += [("share", c.id, "g", g) for g in self.model.groups] + [("share", c.id, "guest")]
        if not self.claim(*claims):
            return None
        actor = self.actor_for(c)
        path = self.rng.choice(
            [
                f"/api/v2/collections/{c.id}",
                f"/v1/collections/{c.id}",
                f"{self.model.projects[c.project].base}/{c.name}",
            ]
        )

        async def run() -> None:
            status, _ = await self.run.write("DELETE", path, 200, actor=actor, landed=frozenset({404}))
            if self.run.ok(status, 200, frozenset({404})):
                c.deleted = True

        return run()

    def move(self, live: list[Collection]) -> Awaitable[None] | None:
        """Dialect A's update with `datasetId`: to the other dataset, or out of any (null)."""
        movable = [c for c in live if self.model.projects[c.project].datasets]
        if not movable:
            return None
        c = self.rng.choice(movable)
        if not self.claim(("c", c.id)):
            return None
        target = self.rng.choice(
            [d for d in [None, *self.model.projects[c.project].datasets] if d != c.dataset]
        )
        actor = self.actor_for(c)
        path = f"{self.model.projects[c.project].base}/{c.name}"

        async def run() -> None:
            status, _ = await self.run.write("PATCH", path, 200, actor=actor, json={"datasetId": target})
            if status == 200:
                c.dataset = target

        return run()

    # --- access: public, shares, guests, groups, roles -----------------------------------------------------
    def public(self, live: list[Collection]) -> Awaitable[None] | None:
        """`POST .../public` or `.../private`, the other way round from now."""
        c = self.rng.choice(live)
        if not self.claim(("c", c.id)):
            return None
        actor = self.actor_for(c)
        path = f"/api/v2/collections/{c.id}/{'private' if c.public else 'public'}"

        async def run() -> None:
            status, _ = await self.run.write("POST", path, 200, actor=actor, landed=frozenset({400}))
            if self.run.ok(status, 200, frozenset({400})):
                c.public = not c.public

        return run()

    def share(self, live: list[Collection]) -> Awaitable[None] | None:
        """Share with a user (or a guest), or stop sharing: `users/{id}`."""
        c = self.rng.choice(live)
        user = self.rng.choice([u for u in [*self.model.users, *self.model.guests] if u != c.owner])
        if not self.claim(("share", c.id, "u", user)):
            return None
        return self._toggle(c, f"users/{user}", (c.id, user), self.model.user_shares)

    def group(self, live: list[Collection]) -> Awaitable[None] | None:
        """Share with a group, or stop sharing: `user_groups/{id}`."""
        c = self.rng.choice(live)
        group = self.rng.choice(self.model.groups)
        if not self.claim(("share", c.id, "g", group)):
            return None
        return self._toggle(c, f"user_groups/{group}", (c.id, group), self.model.group_shares)

    def _toggle(
        self, c: Collection, tail: str, fact: tuple[str, int], facts: set[tuple[str, int]]
    ) -> Awaitable[None]:
        on = fact not in facts
        actor = self.actor_for(c)

        async def run() -> None:
            status, _ = await self.run.write(
                "POST" if on else "DELETE",
                f"/api/v2/collections/{c.id}/{tail}",
                200,
                actor=actor,
                landed=frozenset({400}),
            )
            if self.run.ok(status, 200, frozenset({400})):
                if on:
                    facts.add(fact)
                else:
                    facts.discard(fact)

        return run()

    def guest(self, live: list[Collection]) -> Awaitable[None] | None:
        """Invite a new e-mail as a guest (a new user, shared with the collection); later a reader too."""
        pending = sum(1 for key in self.claimed if key[0] == "guest")
        if len(self.model.guests) + pending >= GUESTS_MAX:
            return self.share(live)
        c = self.rng.choice(live)
        email = unique_email(f"guest{self.run.seed}")
        actor = self.actor_for(c)
        model, run = self.model, self.run

        async def invite() -> None:
            path = f"/api/v2/collections/{c.id}/guests"
            status, body = await run.write(
                "POST", path, 200, actor=actor, landed=frozenset({400}), json={"email": email}
            )
            if not run.ok(status, 200, frozenset({400})):
                return
            if status != 200:  # the first attempt landed: the guest is in the collection's users
                status, body = await run.write("GET", f"/api/v2/collections/{c.id}/users", 200, actor=actor)
            guest = next(int(u["id"]) for u in body["users"] if u["email"] == email)
            key = await model_key(run.faults.hub, guest)
            model.keys[guest] = key
            model.guests.append(guest)
            model.user_shares.add((c.id, guest))

        if not self.claim(("share", c.id, "guest")):
            return None
        self.claim(("guest", email))
        return invite()

    def member(self, live: list[Collection]) -> Awaitable[None] | None:
        """The admin adds a user to a group, or removes it."""
        group, user = self.rng.choice(self.model.groups), self.rng.choice(self.model.users)
        if not self.claim(("member", group, user)):
            return None
        return self._membership(group, user)

    def _membership(self, group: int, user: int) -> Awaitable[None]:
        on = (group, user) not in self.model.members
        model, run = self.model, self.run

        async def run_it() -> None:
            if on:
                status, _ = await run.write(
                    "POST",
                    f"/admin/groups/{group}/members",
                    200,
                    actor=model.admin,
                    json={"user_ids": [user]},
                )
                if status == 200:
                    model.members.add((group, user))
            else:
                status, _ = await run.write(
                    "DELETE",
                    f"/admin/groups/{group}/members/{user}",
                    200,
                    actor=model.admin,
                    landed=frozenset({400}),
                )
                if run.ok(status, 200, frozenset({400})):
                    model.members.discard((group, user))

        return run_it()

    def pair(self, live: list[Collection]) -> Awaitable[None] | None:
        """A membership and a share with that group changed at once: the audit's leak (issue 26 item 1)
        when the member leaves as the group is unshared."""
        leaks = [
            (c, g, u)
            for c in live
            for g in self.model.groups
            for u in self.model.users
            if (c.id, g) in self.model.group_shares and (g, u) in self.model.members and u != c.owner
        ]
        if leaks and self.rng.random() < 0.7:  # both on, both turned off at once: the audit's case
            c, group, user = self.rng.choice(leaks)
        else:
            c, group = self.rng.choice(live), self.rng.choice(self.model.groups)
            user = self.rng.choice([u for u in self.model.users if u != c.owner] or self.model.users)
        if not self.claim(("member", group, user), ("share", c.id, "g", group)):
            return None
        both = [
            self._membership(group, user),
            self._toggle(c, f"user_groups/{group}", (c.id, group), self.model.group_shares),
        ]

        async def at_once() -> None:
            await asyncio.gather(*both)

        return at_once()

    def role(self, live: list[Collection]) -> Awaitable[None] | None:
        """The admin gives a user a role on the namespace project or on another user's personal project,
        changes it, or takes it away."""
        user = self.rng.choice(self.model.users)
        project = self.rng.choice([key for key in self.model.projects if key != ("personal", f"user-{user}")])
        if not self.claim(("role", *project, user)):
            return None
        current = self.model.roles.get((project, user))
        new = self.rng.choice([None, *ROLES])
        path = f"/admin/namespaces/{project[0]}/projects/{project[1]}/members/{user}"
        model, run = self.model, self.run

        async def run_it() -> None:
            if new is None:
                expected = 200 if current else 404
                status, _ = await run.write(
                    "DELETE", path, expected, actor=model.admin, landed=frozenset({404})
                )
                if run.ok(status, expected, frozenset({404})):
                    model.roles.pop((project, user), None)
            else:
                status, _ = await run.write("PUT", path, 200, actor=model.admin, json={"role": new})
                if status == 200:
                    model.roles[(project, user)] = new

        return run_it()


async def model_key(hub: Hub, user_id: int) -> str:
    """A new API key of a user (the admin API; access_service only, so no catalog fault reaches it)."""
    return str((await hub.create_key(user_id))["key"])


# --- reading every list ---------------------------------------------------------------------------------
async def walk_c(run: Run, reader: int) -> list[str] | str:
    """Dialect C: every id of the reader's list, 3 a page, or why it could not be read."""
    ids: list[str] = []
    token = None
    while True:
        params = {"pageSize": "3", **({"paginationToken": token} if token else {})}
        status, body = await call(
            run.faults, "GET", "/v1/collections", key=run.model.keys[reader], params=params
        )
        if status != 200:
            return f"C page answered {status}"
        ids += [c["id"] for c in body["collections"]]
        token = body.get("nextPaginationToken")
        if token is None:
            return ids


async def walk_a(run: Run, token: str, project: Project, dataset: str | None) -> tuple[list[str], int] | str:
    """Dialect A: every id of the reader's list of a project (of a dataset), 4 a page, and its total."""
    ids: list[str] = []
    page = 1
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        params = {"page": str(page), "pageSize": "4", **({"datasetId": dataset} if dataset else {})}
        status, body = await call(run.faults, "GET", project.base, headers=headers, params=params)
        if status != 200:
            return f"A page answered {status}"
        ids += [c["id"] for c in body["collections"]]
        if page >= body["totalPages"]:
            return ids, int(body["total"])
        page += 1


async def live_documents(faults: FaultStack) -> dict[str, Document]:
    """Every live collection of the stack, from catalog's documents (what the admin's lists must hold)."""
    catalog = faults.service_db("catalog")
    fields = {"project_id": 1, "dataset_id": 1}
    return {doc["_id"]: doc async for doc in catalog["collections"].find({"deleted": False}, fields)}


def differs(listed: list[str], expected: set[str], names: dict[str, str]) -> str | None:
    """How a list differs from the rules (each once, exactly the expected), or None."""
    if len(listed) == len(set(listed)) and set(listed) == expected:
        return None

    def show(ids: set[str]) -> list[str]:
        return sorted(names.get(c, c) for c in ids)

    twice = sorted({names.get(c, c) for c in listed if listed.count(c) > 1})
    return f"extra {show(set(listed) - expected)}, missing {show(expected - set(listed))}, twice {twice}"


async def compare(run: Run, where: str) -> list[str]:
    """Every reader's lists in all three dialects against the model (the admin's against the documents)."""
    model = run.model
    documents = await live_documents(run.faults)
    names = {c.id: c.name for c in model.collections.values()}

    async def reader_lists(reader: int) -> list[str]:
        wrong = []
        admin = reader == model.admin
        expected = set(documents) if admin else model.listed(reader)
        status, body = await call(run.faults, "GET", "/api/v2/collections", key=model.keys[reader])
        found: list[str] | str = list(body["collections"]) if status == 200 else f"B answered {status}"
        c_found = await walk_c(run, reader)
        for dialect, listed in (("B", found), ("C", c_found)):
            different = listed if isinstance(listed, str) else differs(listed, expected, names)
            if different:
                wrong.append(f"{where}: user {reader} {dialect} list: {different}")
        token = hs256_token(run.faults.stack.jwt_secret, reader)
        for project in model.projects.values():
            for dataset in [None, *project.datasets]:
                if admin:
                    in_a = {
                        c
                        for c, doc in documents.items()
                        if doc["project_id"] == project.project_id
                        and (dataset is None or doc.get("dataset_id") == dataset)
                    }
                else:
                    in_a = model.listed_in(reader, project.key, dataset)
                answer = await walk_a(run, token, project, dataset)
                if isinstance(answer, str):
                    problem: str | None = answer
                else:
                    problem = differs(answer[0], in_a, names)
                    if problem is None and answer[1] != len(in_a):
                        problem = f"total {answer[1]}, rules {len(in_a)}"
                if problem:
                    scope = "/".join(project.key) + (f" dataset {dataset}" if dataset else "")
                    wrong.append(f"{where}: user {reader} A list of {scope}: {problem}")
        return wrong

    readers = [model.admin, *model.users, *model.guests]
    return [line for lines in await asyncio.gather(*map(reader_lists, readers)) for line in lines]


async def compare_reads(run: Run, where: str) -> list[str]:
    """Every reader's `GET /v1/collections/{id}` of every collection the run made: 200 exactly when the rules
    let it read (public ones included), else 404. Readers never read a collection before this, so no
    cached allow from an earlier round answers here."""
    model = run.model
    wrong = []

    async def read(reader: int, c: Collection) -> None:
        status, _ = await call(run.faults, "GET", f"/v1/collections/{c.id}", key=model.keys[reader])
        rule = 200 if (reader == model.admin and not c.deleted) or model.readable(reader, c) else 404
        if status != rule:
            wrong.append(f"{where}: user {reader} reading {c.name}: {status}, rules {rule}")

    await asyncio.gather(
        *(read(r, c) for r in [model.admin, *model.users, *model.guests] for c in model.collections.values())
    )
    return wrong


async def settled(run: Run, where: str) -> list[str]:
    """Poll until every list matches the model (recovery after a kill), or the deadline; what still
    differs then (empty: nothing)."""
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        wrong = await compare(run, where)
        if not wrong or time.monotonic() > deadline:
            return wrong
        await asyncio.sleep(0.5)


async def kill_a_catalog_replica(run: Run) -> None:
    """kill -9 one catalog replica once a random number of the round's writes have been answered (the rest
    are in flight), then start it again on its port."""
    name = run.rng.choice(["catalog_service", "catalog_service#2"])
    await run.kill_now.wait()
    await run.faults.kill_service(name)
    await run.faults.restart_service(name)


async def run_seed(faults: FaultStack, seed: int, kill_in_round: int | None = None) -> list[str]:
    """ROUNDS rounds of WIDTH concurrent changes; after each, every list against the model (polled until
    recovery after a round with a kill); at the end every read too. What differed (empty: nothing)."""
    run = Run(faults, await setup(faults, seed), random.Random(seed), seed)
    wrong: list[str] = []
    for round_number in range(ROUNDS):
        faulty = round_number == kill_in_round
        run.faulty = faulty
        planner = Planner(run)
        changes = [planner.change() for _ in range(WIDTH * (3 if faulty else 1))]
        where = f"seed {seed} round {round_number}"
        if faulty:
            run.answered = 0
            run.kill_after = run.rng.randint(1, WIDTH)
            await asyncio.gather(kill_a_catalog_replica(run), *changes)
            wrong += await settled(run, f"{where} (after a kill -9)")
            run.faulty, run.kill_after = False, 0
        else:
            await asyncio.gather(*changes)
            wrong += await compare(run, where)
        assert not run.problems, "\n".join(run.problems)  # a write answered what the rules did not say
        if wrong:
            break
    return wrong + await compare_reads(run, f"seed {seed} end")


@pytest.mark.timeout(120 + 10 * RUNS)
async def test_every_list_in_every_dialect_follows_the_rules_after_random_concurrent_changes(
    two_catalogs: FaultStack,
) -> None:
    """After each round of random concurrent changes, every B, C and A list holds what the rules list."""
    wrong: list[str] = []
    for seed in range(RUNS):
        wrong += await run_seed(two_catalogs, seed)
    assert not wrong, "\n".join(wrong)


@pytest.mark.timeout(120 + 10 * RUNS)
async def test_lists_follow_the_rules_after_a_catalog_replica_is_killed_mid_round(
    two_catalogs: FaultStack,
) -> None:
    """After a kill -9 of a catalog replica mid-round, recovery brings every list back to the rules."""
    wrong: list[str] = []
    for seed in range(max(1, RUNS // 3)):
        wrong += await run_seed(two_catalogs, 1000 + seed, kill_in_round=1)
    assert not wrong, "\n".join(wrong)


@dataclass
class Audit:
    """One instance of issue 26 item 1: O owns C, shared with G; U is in G."""

    owner: int
    reader: int
    reader_key: str
    owner_key: str
    collection: str
    group: int

    @property
    def members(self) -> str:
        """The admin's route of G's members."""
        return f"/admin/groups/{self.group}/members"

    @property
    def share(self) -> str:
        """O's route of C's share with G."""
        return f"/api/v2/collections/{self.collection}/user_groups/{self.group}"


async def audit_case(faults: FaultStack, n: int) -> Audit:
    """O, U, C and G as the audit had them, U seeing C through G (asked of the list, not of C: no read of
    C is cached to answer for U later)."""
    hub = faults.hub
    owner, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    status, created = await call(
        faults, "POST", "/api/v2/collections", key=owner_key, json={"title": f"audit-{n}"}
    )
    assert status == 200, created
    status, group = await call(
        faults, "POST", "/admin/groups", json={"name": f"audit-{uuid.uuid4().hex[:8]}"}
    )
    assert status == 201
    case = Audit(owner["id"], reader["id"], reader_key, owner_key, created["collection"]["id"], group["id"])
    assert (await call(faults, "POST", case.members, json={"user_ids": [case.reader]}))[0] == 200
    assert (await call(faults, "POST", case.share, key=owner_key))[0] == 200
    status, body = await call(faults, "GET", "/api/v2/collections", key=reader_key)
    assert case.collection in body["collections"]
    return case


async def still_seen(faults: FaultStack, case: Audit) -> list[str]:
    """Where U still meets C: its B list, its C list, its A list of O's personal project, a read of C."""
    seen = []
    status, body = await call(faults, "GET", "/api/v2/collections", key=case.reader_key)
    if status != 200 or case.collection in body["collections"]:
        seen.append(f"B list ({status})")
    status, body = await call(
        faults, "GET", "/v1/collections", key=case.reader_key, params={"pageSize": "100"}
    )
    if status != 200 or case.collection in [c["id"] for c in body["collections"]]:
        seen.append(f"C list ({status})")
    token = hs256_token(faults.stack.jwt_secret, case.reader)
    status, body = await call(
        faults,
        "GET",
        f"/namespaces/personal/projects/user-{case.owner}/collections",
        headers={"Authorization": f"Bearer {token}"},
    )
    if status != 200 or (body["total"], body["collections"]) != (0, []):
        seen.append(f"A list ({status})")
    status, _ = await call(faults, "GET", f"/v1/collections/{case.collection}", key=case.reader_key)
    if status != 404:
        seen.append(f"read {status}")
    return [f"U {case.reader}, C {case.collection}: {where}" for where in seen]


async def test_a_member_removed_as_the_group_is_unshared_loses_the_collection_everywhere(
    two_catalogs: FaultStack,
) -> None:
    """U removed from G as G is unshared from C (issue 26 item 1): C leaves U's lists, and U reads 404."""
    cases = await asyncio.gather(*(audit_case(two_catalogs, n) for n in range(AUDIT_CASES)))
    pairs = []
    for n, case in enumerate(cases):
        pair = [
            call(two_catalogs, "DELETE", f"{case.members}/{case.reader}"),
            call(two_catalogs, "DELETE", case.share, key=case.owner_key),
        ]
        pairs += pair if n % 2 else pair[::-1]
    answers = await asyncio.gather(*pairs)
    assert [status for status, _ in answers] == [200] * len(pairs), answers
    seen = [line for case in cases for line in await still_seen(two_catalogs, case)]
    assert not seen, "\n".join(seen)
