"""Anti-entropy for the lists' read model: each view recomputed from the facts and compared with its content.

The views are derived state (catalog_service/reader_views.py); their invariant (docs/scale.md, "Lists: the
invariant") is that at rest a view holds exactly the collections its reader may read, each once. Every change
keeps it by construction; this pass checks that it did, because a derived store nobody checks drifts
silently. For one view it gathers every collection that could belong (what it holds; for a reader: what
the reader owns, what is shared with it or its groups, and with no project in the key every collection of
a project it holds a role on; for everyone's views: every live collection in scope), asks the same rule
the changes use which of them belong, and compares. A difference is confirmed once more after
`confirm_seconds` (a change under way, its touch not committed yet, is not drift), then repaired by
touching the differing collections (a touch is always safe: it commits what the rules say), counted in
`catalog_view_repairs_total` and logged: a repair means a bug let a view drift, and the alert
`HubViewRepairs` says so.

The pass walks views in key order, `per_pass` views at a time, and keeps where it stopped in the `views`
collection, so it resumes after a restart, and every view is checked once per
(number of views / `per_pass`) passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from catalog_service.reader_views import CHUNK, EVERYONE, PART, ReaderViews, reader_user
from catalog_service.repository import CatalogRepository
from catalog_service.schemas import ViewDrift, ViewsVerified
from catalog_service.view_repository import ViewRepository
from shared.metrics import Metrics
from shared.principal import Principal, require_admin

log = logging.getLogger(__name__)


@dataclass
class Drift:
    """How one view differed from the rules."""

    view: str
    missing: list[str] = field(default_factory=list)  # belongs, not held
    extra: list[str] = field(default_factory=list)  # held, does not belong
    twice: list[str] = field(default_factory=list)  # held at more than one position

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.twice)


@dataclass
class PassReport:
    """One pass: the views checked, those that had drifted, and where the next pass starts (None: the
    end was reached and the next pass starts over)."""

    checked: int
    drifted: list[Drift]
    next_view: str | None


class ViewVerifier:
    """Checks views against the rules, repairs and counts what drifted."""

    def __init__(
        self,
        views: ReaderViews,
        repository: CatalogRepository,
        view_repository: ViewRepository,
        metrics: Metrics | None = None,
        *,
        confirm_seconds: float = 2.0,
    ) -> None:
        self.views = views
        self.repo = repository
        self.view_repo = view_repository
        self.metrics = metrics
        self.confirm_seconds = confirm_seconds

    async def check(self, view: str, *, repair: bool = True) -> Drift:
        """Compare one view with the rules; with `repair`, touch what differs (confirmed first)."""
        drift = await self._compare(view)
        if drift and self.confirm_seconds:
            await asyncio.sleep(self.confirm_seconds)
            drift = await self._compare(view, only=[*drift.missing, *drift.extra, *drift.twice])
        if drift:
            self._report(drift, repaired=repair)
            if repair:
                await self.views.touch(view, [*drift.missing, *drift.extra])
        return drift

    async def run_pass(self, per_pass: int, *, repair: bool = True) -> PassReport:
        """Check the next `per_pass` views after where the last pass stopped (kept in the store)."""
        after = await self.view_repo.verify_cursor()
        report = await self.check_after(after, per_pass, repair=repair)
        await self.view_repo.set_verify_cursor(report.next_view or "")
        return report

    async def check_after(self, after: str, limit: int, *, repair: bool) -> PassReport:
        """Check up to `limit` views whose keys follow `after` (empty: from the first)."""
        keys = await self.view_repo.view_keys_after(after, limit)
        drifted = [drift for view in keys if (drift := await self.check(view, repair=repair))]
        return PassReport(len(keys), drifted, keys[-1] if len(keys) == limit else None)

    async def verify_for(
        self, principal: Principal, after: str, limit: int, *, repair: bool
    ) -> ViewsVerified:
        """`POST /admin/views/verify` (admins): one page of the walk, as `collections-hub views verify`
        reads it."""
        require_admin(principal)
        report = await self.check_after(after, limit, repair=repair)
        drifted = [
            ViewDrift(view=d.view.replace(PART, "/"), missing=d.missing, extra=d.extra, twice=d.twice)
            for d in report.drifted
        ]
        return ViewsVerified(checked=report.checked, drifted=drifted, repaired=repair, next=report.next_view)

    async def _compare(self, view: str, only: Iterable[str] | None = None) -> Drift:
        held = await self.views.all_ids(view)
        counts = Counter(held)
        candidates = set(counts) | await self._candidates(view) if only is None else set(only)
        belongs: set[str] = set()
        ordered = sorted(candidates)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            belongs |= (await self.views.belonging({view: chunk}))[view]
        return Drift(
            view,
            missing=sorted(c for c in candidates if c in belongs and c not in counts),
            extra=sorted(c for c in candidates if c in counts and c not in belongs),
            twice=sorted(c for c in candidates if counts.get(c, 0) > 1),
        )

    async def _candidates(self, view: str) -> set[str]:
        """Every collection that could belong in the view, by the rules' own inputs."""
        reader, project_id, _ = view.split(PART)
        if reader == EVERYONE:
            if project_id:
                return set(await self.repo.live_ids_in_project(project_id))
            return {
                doc["_id"] async for batch in self.repo.live_collections({"_id": 1}, CHUNK) for doc in batch
            }
        user_id = reader_user(view)
        found = set(await self.repo.live_ids_of_owner(user_id))
        facts = await self.view_repo.facts({"u": user_id})
        whos = [f"u:{user_id}", *(f"g:{fact['g']}" for fact in facts if fact["k"] == "M")]
        for who in whos:
            found |= {share["c"] for share in await self.view_repo.facts({"who": who, "k": "S"})}
        if not project_id:
            for fact in facts:
                if fact["k"] == "R":
                    found |= set(await self.repo.live_ids_in_project(fact["project"]))
        return found

    def _report(self, drift: Drift, *, repaired: bool) -> None:
        log.warning(
            "view %r drifted from the rules (%s): %d missing, %d extra, %d twice",
            drift.view.replace(PART, "/"),
            "repaired" if repaired else "not repaired",
            len(drift.missing),
            len(drift.extra),
            len(drift.twice),
        )
        if self.metrics is not None:
            for kind, ids in (("missing", drift.missing), ("extra", drift.extra), ("twice", drift.twice)):
                if ids:
                    self.metrics.view_repairs.labels(self.metrics.service, kind).inc(len(ids))
