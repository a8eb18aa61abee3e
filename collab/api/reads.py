"""Read markers and the mention inbox.

``POST /rooms/{room}/read`` moves the caller's marker forward (any member, viewers too; a
lower value changes nothing, a value past the last message is taken as the last message) and
answers where it is. ``GET /rooms/{room}/reads`` lists the members' public markers and the
caller's own. ``GET /me/inbox`` pages the caller's mentions, newest first, and
``POST /me/inbox/read`` marks some or all of them read. The inbox spans rooms, so it asks for a
credential that stands for the user at large (not a room token). Writes spend the chat-write
bucket (``Rate.chat``), as posts do.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.api.messages import chat_actor, message_json
from collab.errors import BadRequest
from collab.meta import InboxEntry, Message
from collab.services import services

MAX_IDS = 200  # entries one call may mark read by id (a page's worth)


@api_endpoint
async def mark_read(request: Request) -> Response:
    """Move one's read marker in the room forward to ``up_to`` (a seq)."""
    actor, room_id = await chat_actor(request)
    up_to = parsing.get_field(await parsing.read_json(request), "up_to", int)
    if up_to is None:
        raise BadRequest("'up_to' (a message seq) is required")
    marker = await services(request).chat.mark_read(room_id, actor, up_to)
    return JSONResponse({"up_to": marker})


@api_endpoint
async def list_reads(request: Request) -> Response:
    """The room's public read markers, and one's own."""
    actor, room_id = await chat_actor(request)
    markers = await services(request).chat.read_markers(room_id, actor.user_id)
    page, cursor = parsing.paginate(request, markers, lambda m: [m.user_id])
    items = [{"user_id": m.user_id, "up_to": m.up_to} for m in page]
    return parsing.page_response(items, cursor)


def entry_json(entry: InboxEntry, message: Message, viewer: str) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "room": entry.room_id,
        "message": message_json(message, viewer),
        "created_at": entry.created_at,
        "read": entry.read,
    }


@api_endpoint
async def list_inbox(request: Request) -> Response:
    """One's mentions, newest first (``unread=1``: only unread ones)."""
    principal = await access.require_principal(request, personal=True)
    limit = parsing.int_param(request, "limit", parsing.DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    unread = parsing.int_param(request, "unread", 0, 0, 1) == 1
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    before: int | None = None
    if cursor is not None:
        if len(cursor) != 1 or type(cursor[0]) is not int or not 0 < cursor[0] < 2**63:
            raise BadRequest("bad cursor")
        before = cursor[0]
    found = await services(request).meta.list_inbox(
        principal.user_id, unread_only=unread, before_id=before, limit=limit + 1
    )
    page = found[:limit]
    more = len(found) > limit
    next_cursor = parsing.encode_cursor([page[-1][0].id]) if more else None
    items = [entry_json(entry, message, principal.user_id) for entry, message in page]
    return parsing.page_response(items, next_cursor)


def _ids(body: dict[str, Any]) -> list[int] | None:
    """The entry ids to mark (None: all), from ``{"ids": [...]}`` or ``{"all": true}``."""
    every = parsing.get_field(body, "all", bool)
    raw = body.get("ids")
    if (every is True) == (raw is not None):
        raise BadRequest("give either 'ids' (a list of entry ids) or 'all': true")
    if every:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_IDS:
        raise BadRequest(f"'ids' must be a list of at most {MAX_IDS} entry ids")
    ids: list[int] = []
    for value in raw:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise BadRequest("an entry id is a string of digits")
        if len(value) > 19:  # beyond any id: matches nothing
            continue
        ids.append(int(value))
    return ids


@api_endpoint
async def mark_inbox_read(request: Request) -> Response:
    """Mark mentions read: ``{"ids": [...]}`` or ``{"all": true}``."""
    principal = await access.require_principal(request, personal=True)
    ids = _ids(await parsing.read_json(request))
    changed = await services(request).meta.mark_inbox_read(principal.user_id, ids)
    if changed:
        services(request).registry.feeds.user_changed(principal.user_id, everywhere=True)
    return JSONResponse({"marked": changed})
