"""What each path parameter of the public routes is, with an example from the seed documents."""

from __future__ import annotations

from typing import Any

_ID = "20 URL-safe characters"

PATH_PARAMETERS: dict[str, tuple[str, Any]] = {
    "slug": ("The namespace's slug.", "acme"),
    "namespace_slug": ("The namespace's slug.", "acme"),
    "project": ("The project's slug.", "cameras"),
    "project_slug": ("The project's slug.", "cameras"),
    "name": ("The collection's name, unique in its project.", "front-camera-clips"),
    "collection_id": (f"The collection's id ({_ID}).", "30DYGn7og_Nm7NO49piR"),
    "user_id": ("A user's integer id.", "15"),
    "group_id": ("A user group's integer id.", "2"),
    "cursor": ("`0` for the first page (of history: the newest), else an earlier `next_cursor`.", "0"),
    "item_id": ("The asset's or model's id.", "K9KLrMpCrvd3qhKq_8_v"),
    "key_id": ("The API key's id.", "k_2b7c9e"),
}


def path_parameter(name: str) -> dict[str, Any]:
    """The OpenAPI parameter object for a path parameter (any non-empty string; the route decides)."""
    description, example = PATH_PARAMETERS.get(name, (name, None))
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }
    if example is not None:
        parameter["example"] = example
    return parameter
