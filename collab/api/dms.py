"""Direct messages: ``POST /dms`` opens the private room of the caller and one other user,
``GET /dms`` lists the caller's.

A DM is a room (``GET /rooms/{room}``, its chat, its docs, its sockets) of ``kind`` ``dm``
whose answer names the ``peer``. Opening is idempotent per unordered pair and race-safe (the
store's one step, ``meta.Dms.open_dm``): 201 when this call created it, 200 when it existed.
Both users are editors; nobody else is ever added (409), and a DM is listed here, not with the
rooms. A disabled user's DMs stay readable by the other user; a new DM with a disabled user is
refused like one with an unknown user (404).
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.api.rooms import room_json, with_unread
from collab.auth.policy import effective_role
from collab.errors import BadRequest, NotFound
from collab.meta import MetaStore, Role, User
from collab.services import services

NO_USER = "no such user"


async def find_user(meta: MetaStore, who: str) -> User | None:
    """A user by id, else by handle (case-insensitive, an ``@`` before it allowed)."""
    user = await meta.get_user(who)
    if user is None:
        user = await meta.get_user_by_handle(who.removeprefix("@"))
    return user


@api_endpoint
async def open_dm(request: Request) -> Response:
    """Open the direct message with a user (by id or handle): 201 created, 200 existing."""
    principal = await access.require_principal(request, personal=True)
    who = parsing.get_field(await parsing.read_json(request), "user", str)
    if not who or len(who) > 200:
        raise BadRequest("'user' (a user id or handle) is required")
    meta = services(request).meta
    peer = await find_user(meta, who)
    if peer is None:
        raise NotFound(NO_USER)
    if peer.id == principal.user_id:
        raise BadRequest("a direct message is with another user")
    if peer.disabled and await meta.find_dm(principal.user_id, peer.id) is None:
        raise NotFound(NO_USER)
    room, created = await meta.open_dm(principal.user_id, peer.id, "dm-" + uuid.uuid4().hex)
    if created:
        await access.audit(request, principal, "dm.open", room_id=room.id, target=peer.id)
        for user_id in (principal.user_id, peer.id):  # their sidebars list it at once
            services(request).registry.feeds.user_changed(user_id, everywhere=True)
    role = effective_role(principal, Role.editor)  # a DM's members are editors
    return JSONResponse(room_json(room, role, peer), status_code=201 if created else 200)


@api_endpoint
async def list_dms(request: Request) -> Response:
    """The caller's direct messages, oldest first, each with its peer and unread counts."""
    principal = await access.require_principal(request, personal=True)
    meta = services(request).meta
    dms = await meta.list_dms_for(principal.user_id)
    page, cursor = parsing.paginate(request, dms, lambda room: [room.created_at, room.id])
    counts = await meta.unread_counts(principal.user_id, [room.id for room in page])
    items = []
    for room in page:
        peer_id = room.dm_peer(principal.user_id)
        peer = await meta.get_user(peer_id) if peer_id else None
        item = room_json(room, effective_role(principal, Role.editor), peer)
        items.append(with_unread(item, counts.get(room.id)))
    return parsing.page_response(items, cursor)
