"""Use cases of project roles: give a user a role on a project, or take it away (admin API)."""

from __future__ import annotations

from access_service.groups import user_not_found
from access_service.repository import AccessRepository
from access_service.schemas import ProjectMember, ProjectRoleUpdate, int_id
from shared.catalog_directory import CollectionDirectory, ProjectDirectory, VisibilityFact
from shared.errors import NotFound
from shared.event_types import ProjectRoleSet, event


class ProjectRoles:
    """Roles on projects, kept in the user's document; projects are looked up in catalog_service."""

    def __init__(
        self, repository: AccessRepository, projects: ProjectDirectory, collections: CollectionDirectory
    ) -> None:
        self.repository = repository
        self.projects = projects
        self.collections = collections

    async def set_role(
        self, namespace_slug: str, project_slug: str, raw_user_id: str, data: ProjectRoleUpdate, *, actor: int
    ) -> ProjectMember:
        """Give the user this role on the project (replacing another); setting the same role is a no-op."""
        user_id, project_id = await self._resolve(namespace_slug, project_slug, raw_user_id)
        role_set = event(
            "access.project.role_set",
            ProjectRoleSet(role=data.role),
            actor=actor,
            project_id=project_id,
            user_id=user_id,
        )
        if version := await self.repository.set_project_role(user_id, project_id, data.role, role_set):
            await self.collections.tell_facts([_role_fact(user_id, project_id, True, version)])
        return ProjectMember(project_id=project_id, user_id=user_id, role=data.role)

    async def remove_role(
        self, namespace_slug: str, project_slug: str, raw_user_id: str, *, actor: int
    ) -> ProjectMember:
        """Take the user's role on the project away; 404 when it holds none."""
        user_id, project_id = await self._resolve(namespace_slug, project_slug, raw_user_id)
        role_set = event(
            "access.project.role_set",
            ProjectRoleSet(role=None),
            actor=actor,
            project_id=project_id,
            user_id=user_id,
        )
        version = await self.repository.remove_project_role(user_id, project_id, role_set)
        if not version:
            raise NotFound(f"User {user_id} has no role on this project")
        await self.collections.tell_facts([_role_fact(user_id, project_id, False, version)])
        return ProjectMember(project_id=project_id, user_id=user_id, role=None)

    async def _resolve(self, namespace_slug: str, project_slug: str, raw_user_id: str) -> tuple[int, str]:
        """(user id, project id); 404 for an unknown user or project."""
        user_id = int_id(raw_user_id)
        if user_id is None or await self.repository.user_by_id(user_id) is None:
            raise user_not_found(raw_user_id)
        project_id = await self.projects.project_id(namespace_slug, project_slug)
        if project_id is None:
            raise NotFound("project not found")
        return user_id, project_id


def _role_fact(user_id: int, project_id: str, on: bool, version: int) -> VisibilityFact:
    """What catalog's lists need to know: the user sees (or no longer sees) the project's collections."""
    return VisibilityFact(kind="role", on=on, version=version, user_id=user_id, project_id=project_id)
