"""A room's audit log, readable by its owners (newest first; the cursor is an event id)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collab.api import deps
from collab.meta import AuditEvent, Role


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


@deps.api_endpoint
async def room_audit(request: Request) -> Response:
    """The room's audit events (owner), newest first."""
    principal = await deps.require_principal(request)
    room_id = deps.room_param(request)
    await deps.require_role(request, principal, room_id, Role.owner)
    limit = deps.int_param(request, "limit", deps.DEFAULT_LIMIT, 1, deps.MAX_LIMIT)
    cursor = deps.decode_cursor(request.query_params.get("cursor"))
    before = cursor[0] if cursor and isinstance(cursor[0], int) else None
    events = await deps.meta(request).list_audit(room_id=room_id, limit=limit + 1, before_id=before)
    page = events[:limit]
    more = len(events) > limit and page and page[-1].id is not None
    next_cursor = deps.encode_cursor([page[-1].id]) if more else None
    return deps.page_response([event_json(e) for e in page], next_cursor)
