"""A room's audit log, readable by its owners (newest first; the cursor is an event id)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.meta import AuditEvent, Role
from collab.services import services


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "action": event.action,
        "actor": event.actor,
        "room": event.room_id,
        "target": event.target,
        "detail": event.detail,
    }


@api_endpoint
async def room_audit(request: Request) -> Response:
    """The room's audit events (owner), newest first."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    limit = parsing.int_param(request, "limit", parsing.DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    before = cursor[0] if cursor and isinstance(cursor[0], int) else None
    meta = services(request).meta
    events = await meta.list_audit(room_id=room_id, limit=limit + 1, before_id=before)
    page = events[:limit]
    more = len(events) > limit and page and page[-1].id is not None
    next_cursor = parsing.encode_cursor([page[-1].id]) if more else None
    return parsing.page_response([event_json(e) for e in page], next_cursor)
