"""Examples from the seed documents (`../shared/seeds/`), keyed by `METHOD path` as the documents show them.

Shown by `/docs` beside each operation. Answers carry every field we send (the seeds sometimes elide
some), with the seeds' values.
"""

from __future__ import annotations

from typing import Any

_A = "/namespaces/{slug}/projects/{project}/collections"
_COLLECTION_A: dict[str, Any] = {
    "id": "3kQ1Xb9v0Zr7Lm2Np4Ts",
    "name": "front-camera-clips",
    "description": None,
    "tags": [],
    "metadata": {},
    "members": ["nodeId1", "nodeId2", "nodeId3"],
    "datasetId": "dataset-id",
    "projectId": "space-id",
    "createdAt": "2026-04-15T08:30:00.000Z",
    "updatedAt": "2026-04-15T08:30:00.000Z",
}
_NOT_FOUND_A = {"statusCode": 404, "message": "Collection not found", "error": "Not Found"}

_COLLECTION_B: dict[str, Any] = {
    "id": "30DYGn7og_Nm7NO49piR",
    "title": "Sample Collection",
    "description": "Sample collection description.",
    "category": None,
    "tags": [],
    "owner": "admin-user-46@example.com",
    "media_type": "collection",
    "isPublic": False,
    "created_date": "2023-11-27T09:42:47.269Z",
    "modification_date": "2023-11-27T09:42:47.269Z",
    "original_title": "Sample Collection",
}
_NOT_FOUND_B = {"error": "collection not found"}
_USERS_B = {
    "users": [
        {
            "id": 12,
            "first_name": None,
            "last_name": None,
            "email": "admin-user-12@example.com",
            "user_role": {"name": "admin"},
        }
    ]
}

_COLLECTION_C = {
    "collection": {
        "id": "asset_GTrL3mq4SXWyMxkOHRxlpw",
        "name": "Spring campaign",
        "ownerId": "dcf121faaa1a0a0bbbd9ca1b73d62aea",
        "assetCount": 1,
        "modelCount": 0,
        "itemCount": 1,
        "createdAt": "2023-02-03T11:19:41.579Z",
        "updatedAt": "2023-02-03T11:19:41.579Z",
        "thumbnail": {"assetId": "asset_x3aP0v", "url": "https://cdn.example.com/x3aP0v.png"},
    }
}

EXAMPLES: dict[str, dict[str, Any]] = {
    # --- dialect A (000) ---
    f"POST {_A}": {
        "request": {
            "name": "front-camera-clips",
            "datasetId": "dataset-id",
            "members": ["nodeId1", "nodeId2"],
        },
        "response": {**_COLLECTION_A, "members": ["nodeId1", "nodeId2"]},
        "errors": {
            409: {
                "statusCode": 409,
                "message": "Collection name already exists in this project",
                "error": "Conflict",
            }
        },
    },
    f"GET {_A}": {
        "response": {"collections": [_COLLECTION_A], "page": 1, "pageSize": 50, "total": 1, "totalPages": 1}
    },
    f"GET {_A}/{{name}}": {"response": _COLLECTION_A, "errors": {404: _NOT_FOUND_A}},
    f"PATCH {_A}/{{name}}": {
        "request": {"description": "Clips from the front camera", "datasetId": None},
        "response": {**_COLLECTION_A, "description": "Clips from the front camera", "datasetId": None},
        "errors": {404: _NOT_FOUND_A},
    },
    f"DELETE {_A}/{{name}}": {"response": {"success": True}, "errors": {404: _NOT_FOUND_A}},
    f"POST {_A}/{{name}}/members": {
        "request": {"add": ["nodeId3", "nodeId4"]},
        "response": {"members": ["nodeId1", "nodeId2", "nodeId3", "nodeId4"], "added": 2, "total": 4},
        "errors": {404: _NOT_FOUND_A},
    },
    f"DELETE {_A}/{{name}}/members": {
        "request": {"remove": ["nodeId2", "nodeId4"]},
        "response": {"members": ["nodeId1", "nodeId3"], "removed": 2, "total": 2},
        "errors": {404: _NOT_FOUND_A},
    },
    # --- dialect B (002) ---
    "GET /api/v2/collections": {"response": {"collections": []}},
    "POST /api/v2/collections": {
        "request": {"title": "Test Collection", "description": "Test description"},
        "response": {
            "collection": {
                **_COLLECTION_B,
                "id": "Mmt55dqXeNE5xxRUvkQh",
                "title": "Test Collection",
                "description": "Test description",
                "original_title": "Test Collection",
            }
        },
        "errors": {400: {"error": "Title is too long (maximum is 255 characters)"}},
    },
    "GET /api/v2/collections/{collection_id}": {
        "response": {"collection": _COLLECTION_B},
        "errors": {404: _NOT_FOUND_B},
    },
    "DELETE /api/v2/collections/{collection_id}": {
        "response": {"collection": True},
        "errors": {404: _NOT_FOUND_B},
    },
    "POST /api/v2/collections/{collection_id}/assets": {
        "request": {"asset_id": "K9KLrMpCrvd3qhKq_8_v"},
        "response": {"message": "asset successfully added to collection"},
        "errors": {400: {"error": "asset not found"}, 404: _NOT_FOUND_B},
    },
    "DELETE /api/v2/collections/{collection_id}/assets": {
        "request": {"asset_id": "h4AhHBYgmrqEfH7xje3w"},
        "response": {"message": "asset successfully removed from collection"},
        "errors": {400: {"error": "asset not found"}, 404: _NOT_FOUND_B},
    },
    "POST /api/v2/collections/{collection_id}/public": {
        "response": {"is_public": True},
        "errors": {400: {"error": "Collection is public already"}, 404: _NOT_FOUND_B},
    },
    "POST /api/v2/collections/{collection_id}/private": {
        "response": {"is_public": False},
        "errors": {400: {"error": "Collection is private already"}, 404: _NOT_FOUND_B},
    },
    "GET /api/v2/collections/{collection_id}/users": {"response": _USERS_B, "errors": {404: _NOT_FOUND_B}},
    "GET /api/v2/collections/{collection_id}/all_users": {
        "response": _USERS_B,
        "errors": {404: _NOT_FOUND_B},
    },
    "POST /api/v2/collections/{collection_id}/users/{user_id}": {
        "response": {"ok": "User 15 was added succesfully"},
        "errors": {
            400: {"error": "User is already member of this Collection"},
            404: {"error": "Couldn't find User with 'id'=not-found-id"},
        },
    },
    "DELETE /api/v2/collections/{collection_id}/users/{user_id}": {
        "response": {"ok": "User 22 was removed succesfully"},
        "errors": {
            400: {"error": "User is not a member of this Collection"},
            404: {"error": "Couldn't find User with 'id'=not-found-id"},
        },
    },
    "POST /api/v2/collections/{collection_id}/guests": {
        "request": {"email": "example-email@example.com"},
        "errors": {400: {"error": "User already exists"}, 404: _NOT_FOUND_B},
    },
    "POST /api/v2/collections/{collection_id}/user_groups/{group_id}": {
        "response": {"ok": "User group 2 was added succesfully"},
        "errors": {
            400: {"error": "User group with id 3 is already part of this Collection"},
            404: {"error": "Couldn't find UserGroup with 'id'=not-found-id"},
        },
    },
    "DELETE /api/v2/collections/{collection_id}/user_groups/{group_id}": {
        "response": {"ok": "User group 5 was removed succesfully"},
        "errors": {
            400: {"error": "User group with id 6 is not part of this Collection"},
            404: {"error": "Couldn't find UserGroup with 'id'=not-found-id"},
        },
    },
    "GET /api/v2/collections/{collection_id}/history/{cursor}": {
        "errors": {
            404: _NOT_FOUND_B,
            422: {"error": "Invalid parameter 'cursor' value \"test\": Invalid cursor"},
        },
    },
    # --- dialect C (003) ---
    "POST /v1/collections": {"request": {"name": "Spring campaign"}, "response": _COLLECTION_C},
    "GET /v1/collections/{collection_id}": {"response": _COLLECTION_C},
    "PUT /v1/collections/{collection_id}": {
        "request": {"name": "Spring campaign", "thumbnail": {"assetId": "asset_x3aP0v"}},
        "response": _COLLECTION_C,
    },
    "DELETE /v1/collections/{collection_id}": {"response": {}},
    "PUT /v1/collections/{collection_id}/assets": {
        "request": {"assetIds": ["asset_x3aP0v"]},
        "response": _COLLECTION_C,
    },
    "DELETE /v1/collections/{collection_id}/assets": {"request": {"assetIds": ["asset_x3aP0v"]}},
    "PUT /v1/collections/{collection_id}/models": {"request": {"modelIds": ["model_7Hq2"]}},
    "DELETE /v1/collections/{collection_id}/models": {"request": {"modelIds": ["model_7Hq2"]}},
}
