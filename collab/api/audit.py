"""A room's audit log, readable by its owners (newest first; the cursor is an event id).

A room sees only the events since its own creation: the rows of an earlier room of the same id
(deleted, then the id created again by someone else) stay in the site's log (``collab audit``)
but are never shown here, because audit ids only grow and the room keeps the highest id there
was when it was created (``RoomRecord.audit_floor``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.errors import BadRequest
from collab.meta import AuditEvent, Role
from collab.services import services

MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger cursor cannot name an event


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
    """The room's audit events (owner, with a personal credential as every owner route takes:
    a room token stands for its user within the room, not as its manager), newest first."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    limit = parsing.int_param(request, "limit", parsing.DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    before = _cursor_id(request)
    meta = services(request).meta
    room = await meta.get_room(room_id)
    floor = room.audit_floor if room is not None else MAX_ID
    events = await meta.list_audit(
        room_id=room_id, limit=limit + 1, before_id=before, after_id=floor
    )
    page = events[:limit]
    more = len(events) > limit and page and page[-1].id is not None
    next_cursor = parsing.encode_cursor([page[-1].id]) if more else None
    return parsing.page_response([event_json(e) for e in page], next_cursor)


def _cursor_id(request: Request) -> int | None:
    """The event id a cursor names: ``[id]`` with 1 <= id <= MAX_ID; 400 otherwise."""
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    if cursor is None:
        return None
    value = cursor[0] if len(cursor) == 1 else None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise BadRequest("bad cursor")
    return value
