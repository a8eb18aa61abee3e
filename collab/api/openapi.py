"""The OpenAPI 3.1 document of /api/v1, generated from the operation table.

Summaries are the handlers' docstrings; request bodies come from ``BODIES``; every operation
documents the shared error body. A test checks that every registered route appears here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api.handler import Handler
from collab.errors import Rate

ROLE = {"type": "string", "enum": ["viewer", "commenter", "editor", "owner"]}
BODIES: dict[str, dict[str, Any]] = {
    "room_create": {"id": {"type": "string"}, "title": {"type": "string"}},
    "room_update": {"title": {"type": "string"}},
    "member_add": {
        "user_id": {"type": "string"},
        "email": {"type": "string", "description": "records a pending invitation (202)"},
        "role": ROLE,
    },
    "member_update": {"role": ROLE},
    "invite_create": {"role": ROLE, "ttl": {"type": "number"}, "email": {"type": "string"}},
    "room_token": {
        "role": ROLE,
        "ttl": {"type": "number"},
        "docs": {"type": "string", "description": "doc name or fnmatch pattern"},
        "user_id": {"type": "string", "description": "a bot of the room (owners only)"},
    },
    "ticket": {"doc": {"type": "string"}, "role": ROLE},
    "api_token": {"name": {"type": "string"}},
    "user_update": {"disabled": {"type": "boolean"}},
    "me_update": {
        "handle": {"type": "string", "description": "1-32 of a-z 0-9 . _ -, unique"},
        "private_read_markers": {"type": "boolean"},
    },
    "dm_open": {"user": {"type": "string", "description": "a user id or handle"}},
    "message_post": {
        "text": {"type": "string"},
        "client_id": {"type": "string", "description": "idempotency key, per room and author"},
        "thread": {"type": "string", "description": "the parent message's id: a reply"},
        "attachments": {
            "type": "array",
            "items": {"type": "string"},
            "description": "ids of files the room references (uploads), at most 10",
        },
    },
    "message_edit": {"text": {"type": "string"}},
    "read_marker": {"up_to": {"type": "integer", "description": "the last seq read"}},
    "inbox_read": {
        "ids": {"type": "array", "items": {"type": "string"}},
        "all": {"type": "boolean"},
    },
    "doc_update": {
        "title": {"type": "string"},
        "kind": {"type": "string", "enum": ["text", "rich"], "description": "set once"},
    },
    "webhook_create": {
        "url": {"type": "string", "description": "https://, a public address"},
        "events": {"type": "array", "items": {"type": "string"}},
    },
    "webhook_update": {
        "events": {"type": "array", "items": {"type": "string"}},
        "enabled": {"type": "boolean", "description": "true: enable a disabled endpoint"},
    },
    "bot_create": {"name": {"type": "string"}, "role": ROLE},
    "hook_create": {"name": {"type": "string", "description": "the bot it posts as"}},
    "hook_post": {
        "text": {"type": "string"},
        "client_id": {"type": "string", "description": "idempotency key: a retry posts once"},
    },
    "file_upload": {"file": {"type": "string", "format": "binary"}},
}
MULTIPART = {"file_upload"}  # bodies sent as multipart/form-data (a browser's file upload)
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


@dataclass(frozen=True)
class Operation:
    path: str  # under /api/v1
    method: str
    handler: Handler
    status: int = 200
    body: str | None = None  # a key of BODIES
    paginated: bool = False
    rate: Rate | None = None  # creates a thing of this kind: the caller's per-user rate
    also: tuple[int, ...] = ()  # other success statuses (a member added by email: 202)
    query: tuple[tuple[str, str], ...] = ()  # (name, JSON type) beyond cursor and limit


def _operation(op: Operation) -> dict[str, Any]:
    doc = (op.handler.__doc__ or op.handler.__name__).strip().splitlines()[0]
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.paginated:
        params += [
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
        ]
    params += [{"name": name, "in": "query", "schema": {"type": kind}} for name, kind in op.query]
    responses: dict[str, Any] = {}
    for status in (op.status, *op.also):
        success: dict[str, Any] = {"description": "OK"}
        if status not in (204, 304):
            success["content"] = {"application/json": {"schema": {"type": "object"}}}
        responses[str(status)] = success
    responses["4XX"] = {
        "description": "Refused",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if op.rate is not None:
        responses["429"] = {
            "description": f"Over the {op.rate.value.replace('_', ' ')} rate: see Retry-After",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    spec: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": doc,
        "parameters": params,
        "responses": responses,
    }
    if op.body is not None:
        schema = {"type": "object", "properties": BODIES[op.body]}
        media = "multipart/form-data" if op.body in MULTIPART else "application/json"
        spec["requestBody"] = {"content": {media: {"schema": schema}}}
    return spec


def build_document(operations: list[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault("/api/v1" + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "collab", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "collab_session"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }


def openapi_endpoint(operations: Callable[[], list[Operation]]) -> Handler:
    async def openapi_json(request: Request) -> Response:
        """This OpenAPI document."""
        return JSONResponse(build_document(operations()))

    return openapi_json
