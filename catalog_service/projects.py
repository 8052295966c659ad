"""Use cases of namespaces, projects and datasets (cached: they never move once made)."""

from __future__ import annotations

from catalog_service.ids import new_id
from catalog_service.lookup import BoundedCache
from catalog_service.repository import CatalogRepository
from shared import event_types as ev
from shared.authz import AccessDecisions
from shared.clock import timestamp
from shared.errors import Conflict, NotFound
from shared.mongo import Document
from shared.principal import Principal, require_admin

PERSONAL_NAMESPACE = "personal"


PERSONAL_PREFIX = "personal-"


def personal_project_id(user_id: int) -> str:
    """The id of a user's personal project (dialects B and C create collections there)."""
    return f"{PERSONAL_PREFIX}{user_id}"


def personal_project_owner(project_id: str) -> int | None:
    """The user whose personal project this is, or None for any other project (their ids start `prj_`)."""
    if not project_id.startswith(PERSONAL_PREFIX):
        return None
    digits = project_id.removeprefix(PERSONAL_PREFIX)
    return int(digits) if digits.isascii() and digits.isdigit() else None


class Projects:
    """Namespaces, projects and datasets."""

    def __init__(self, repository: CatalogRepository, access: AccessDecisions) -> None:
        self.repo = repository
        self.access = access
        self._projects = BoundedCache()  # (namespace, slug) -> project document
        self._namespaces = BoundedCache()  # slug -> True
        self._datasets = BoundedCache()  # dataset id -> project id

    async def create_namespace(self, principal: Principal, slug: str, name: str | None) -> Document:
        """An admin creates a namespace."""
        require_admin(principal)
        doc = {"_id": slug, "slug": slug, "name": name or slug, "created_at": timestamp()}
        event = ev.event(
            "catalog.namespace.created",
            ev.NamedEntityCreated(name=doc["name"]),
            actor=principal.user_id,
            namespace=slug,
        )
        try:
            await self.repo.insert(self.repo.namespaces, doc, event)
        except Conflict as exc:
            raise Conflict("namespace already exists") from exc
        return doc

    async def create_project(
        self, principal: Principal, namespace: str, slug: str, name: str | None
    ) -> Document:
        """An admin creates a project in a namespace."""
        require_admin(principal)
        await self._require_namespace(namespace)
        project_id = new_id("prj_")
        doc = {
            "_id": project_id,
            "key": f"{namespace}/{slug}",
            "namespace": namespace,
            "slug": slug,
            "name": name or slug,
            "created_at": timestamp(),
        }
        event = ev.event(
            "catalog.project.created",
            ev.NamedEntityCreated(name=doc["name"]),
            actor=principal.user_id,
            project_id=project_id,
            namespace=namespace,
            project=slug,
        )
        try:
            await self.repo.insert(self.repo.projects, doc, event)
        except Conflict as exc:
            raise Conflict("project already exists in this namespace") from exc
        return doc

    async def project(self, namespace: str, slug: str) -> Document:
        """A project by slugs (cached: projects never move); 404 naming what is missing."""
        cached = self._projects.get((namespace, slug))
        if cached is not None:
            return dict(cached)
        doc = await self.repo.project_by_key(namespace, slug)
        if doc is None:
            await self._require_namespace(namespace)
            raise NotFound("Project not found")
        self._projects.remember((namespace, slug), doc)
        return dict(doc)

    async def project_for(self, principal: Principal, namespace: str, slug: str) -> Document:
        """A project by slugs as the caller sees it: its own personal project exists from the first call."""
        if namespace == PERSONAL_NAMESPACE and slug == f"user-{principal.user_id}":
            await self.personal_project(principal)
        return await self.project(namespace, slug)

    async def _require_namespace(self, slug: str) -> None:
        if slug in self._namespaces:
            return
        if await self.repo.namespace(slug) is None:
            raise NotFound("Namespace not found")
        self._namespaces.remember(slug, True)

    async def require_project_writer(self, principal: Principal, project: Document) -> None:
        """Owners and editors of the project, admins, and a user in its own personal project; else 404."""
        if project["_id"] == personal_project_id(principal.user_id):
            return
        if not (await self.access.project_role(principal, project["_id"])).can_write:
            raise NotFound("Project not found")  # callers with no write role learn nothing about it

    async def collection_owner(self, project_id: str, proposed: Principal) -> Principal:
        """Who owns a collection created in the project: the project's owner for a personal project,
        whoever creates it (docs/access.md, "Personal projects"); else `proposed` (the creator, or an
        import's recorded owner). Asks access_service for that owner's e-mail only when it is someone
        else's personal project (an admin or a role holder creating there: rare)."""
        owner_id = personal_project_owner(project_id)
        if owner_id is None or owner_id == proposed.user_id:
            return proposed
        owner = await self.access.user(owner_id)
        if owner is None:  # nobody to own it: the project answers as if it were not there
            raise NotFound("Project not found")
        return owner

    async def create_dataset(self, principal: Principal, namespace: str, slug: str, name: str) -> Document:
        """A project editor (or admin) creates a dataset in the project."""
        project = await self.project_for(principal, namespace, slug)
        await self.require_project_writer(principal, project)
        doc = {"_id": new_id("ds_"), "project_id": project["_id"], "name": name, "created_at": timestamp()}
        event = ev.event(
            "catalog.dataset.created",
            ev.NamedEntityCreated(name=name),
            actor=principal.user_id,
            dataset_id=doc["_id"],
            project_id=project["_id"],
        )
        await self.repo.insert(self.repo.datasets, doc, event)
        self._datasets.remember(doc["_id"], project["_id"])
        return doc

    async def require_dataset(self, dataset_id: str, project_id: str) -> None:
        """404 unless the dataset exists in this project."""
        owner = self._datasets.get(dataset_id)
        if owner is None:
            doc = await self.repo.dataset(dataset_id)
            owner = doc["project_id"] if doc else None
            if owner is not None:
                self._datasets.remember(dataset_id, owner)
        if owner != project_id:
            raise NotFound("Dataset not found")

    async def personal_project(self, principal: Principal) -> str:
        """The caller's default project for dialects B and C (created on first use, then cached)."""
        slug = f"user-{principal.user_id}"
        cached = self._projects.get((PERSONAL_NAMESPACE, slug))
        if cached is not None:
            return str(cached["_id"])
        doc = {
            "_id": personal_project_id(principal.user_id),
            "key": f"{PERSONAL_NAMESPACE}/{slug}",
            "namespace": PERSONAL_NAMESPACE,
            "slug": slug,
            "name": f"{principal.email} (personal)",
            "created_at": timestamp(),
        }
        await self.repo.upsert_quietly(self.repo.projects, doc)
        self._projects.remember((PERSONAL_NAMESPACE, slug), doc)
        return str(doc["_id"])

    async def ensure_personal_namespace(self) -> None:
        """The namespace that holds every user's personal project."""
        await self.repo.upsert_quietly(
            self.repo.namespaces,
            {
                "_id": PERSONAL_NAMESPACE,
                "slug": PERSONAL_NAMESPACE,
                "name": "Personal",
                "created_at": timestamp(),
            },
        )
