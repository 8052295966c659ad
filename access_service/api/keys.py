"""Typed app keys for access_service's use cases and ports (kept apart so handlers and app share them).

The port keys are registrations: `create_app` fills each one the caller has not registered already, so a
test or another deployment registers its own adapter instead of monkeypatching.
"""

from __future__ import annotations

from aiohttp import web

from access_service.decisions import Decisions
from access_service.groups import GroupService
from access_service.ports import Mailer
from access_service.roles import ProjectRoles
from access_service.service import AccessService
from access_service.sharing import CollectionSharing
from shared.catalog_directory import CollectionDirectory, ProjectDirectory

ACCESS_KEY = web.AppKey("access", AccessService)
DECISIONS_KEY = web.AppKey("decisions", Decisions)
GROUPS_KEY = web.AppKey("groups", GroupService)
ROLES_KEY = web.AppKey("project_roles", ProjectRoles)
SHARING_KEY = web.AppKey("sharing", CollectionSharing)

PROJECTS_KEY = web.AppKey[ProjectDirectory]("project_directory")
COLLECTIONS_KEY = web.AppKey[CollectionDirectory]("collection_directory")
MAILER_KEY = web.AppKey[Mailer]("mailer")
