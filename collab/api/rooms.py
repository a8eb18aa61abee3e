"""Rooms: create (the creator becomes owner), list mine, get, rename, delete (owner).

Deleting a room deletes its record with its members, invites and tickets (recording the
deletion in the same step), then closes its open sockets (4404), deletes its documents, and
then its search entries (a doc read before that is older than the drop: it cannot return).
A direct message (``collab.api.dms``) is a room of ``kind`` ``dm`` with a ``peer``: it is not
listed here, and is neither renamed nor deleted (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.api.users import user_ref
from collab.auth.principal import Principal
from collab.errors import BadName, BadRequest, Conflict, LimitReached, NotFound, Quota
from collab.meta import Role, RoomRecord, Unread, User
from collab.names import DocKey, is_valid_name
from collab.services import services
from collab.store.base import DocumentStore
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry

MAX_TITLE = 200
NOT_IN_DM = "a direct message is neither renamed nor deleted"


def room_json(room: RoomRecord, role: Role | None, peer: User | None = None) -> dict[str, Any]:
    """A room as its members see it; a DM also names the ``peer`` (the other user; None for
    someone outside it, such as a site admin)."""
    found: dict[str, Any] = {
        "id": room.id,
        "title": room.title,
        "kind": room.kind,
        "created_by": room.created_by,
        "created_at": room.created_at,
        "role": role.name if role is not None else None,
    }
    if room.is_dm:
        found["peer"] = user_ref(peer) if peer is not None else None
    return found


async def dm_peer(request: Request, principal: Principal, room: RoomRecord) -> User | None:
    """The other user of a DM the principal is in (None otherwise)."""
    peer_id = room.dm_peer(principal.user_id)
    return None if peer_id is None else await services(request).meta.get_user(peer_id)


def with_unread(item: dict[str, Any], counts: Unread | None) -> dict[str, Any]:
    """A listed room with the caller's ``unread`` and ``mentions`` there (capped)."""
    counts = counts or Unread()
    return {**item, "unread": counts.unread, "mentions": counts.mentions}


def _title(body: dict[str, Any], default: str | None = None) -> str:
    title = parsing.get_field(body, "title", str, default)
    if title is None:
        raise BadRequest("'title' is required")
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise BadRequest(f"'title' must be 1 to {MAX_TITLE} characters")
    if not title.isprintable():  # no control characters (NUL: no store takes it)
        raise BadRequest("'title' must be printable")
    return title


@api_endpoint
async def create_room(request: Request) -> Response:
    """Create a room; the caller becomes its owner."""
    principal = await access.require_principal(request, personal=True)
    body = await parsing.read_json(request)
    room_id = parsing.get_field(body, "id", str) or uuid.uuid4().hex[:16]
    if not is_valid_name(room_id):
        raise BadName("bad room id")
    title = _title(body, room_id)
    shared = services(request)
    meta, limit = shared.meta, shared.settings.max_rooms_per_user
    try:  # the cap is counted in the insert's own step
        room = await meta.create_room(room_id, title, principal.user_id, max_rooms=limit)
    except LimitReached:
        raise LimitReached(Quota.rooms_per_user, f"room limit reached ({limit} per user)") from None
    except Conflict:
        raise Conflict("a room with this id exists") from None
    await access.audit(request, principal, "room.create", room_id=room.id, title=title)
    # the creator's other tabs, on every node
    services(request).registry.feeds.user_changed(principal.user_id, everywhere=True)
    return JSONResponse(room_json(room, Role.owner), status_code=201)


@api_endpoint
async def list_rooms(request: Request) -> Response:
    """The rooms the caller is a member of, with their unread messages and mentions."""
    principal = await access.require_principal(request, personal=True)
    meta = services(request).meta
    rooms = await meta.list_rooms_for(principal.user_id)
    page, cursor = parsing.paginate(request, rooms, lambda pair: [pair[0].created_at, pair[0].id])
    counts = await meta.unread_counts(principal.user_id, [room.id for room, _ in page])
    items = [
        with_unread(room_json(room, principal.cap(role)), counts.get(room.id))
        for room, role in page
    ]
    return parsing.page_response(items, cursor)


async def _room(request: Request, room_id: str) -> RoomRecord:
    room = await services(request).meta.get_room(room_id)
    if room is None:
        raise NotFound(access.NO_SUCH_ROOM)
    return room


@api_endpoint
async def get_room(request: Request) -> Response:
    """A room and the caller's role in it."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    role = await access.require_role(request, principal, room_id, Role.viewer)
    room = await _room(request, room_id)
    return JSONResponse(room_json(room, role, await dm_peer(request, principal, room)))


@api_endpoint
async def update_room(request: Request) -> Response:
    """Rename a room (owner)."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    role = await access.require_role_outside_dm(request, principal, room_id, Role.owner, NOT_IN_DM)
    title = _title(await parsing.read_json(request))
    await services(request).meta.rename_room(room_id, title)
    await access.audit(request, principal, "room.rename", room_id=room_id, title=title)
    return JSONResponse(room_json(await _room(request, room_id), role))


async def delete_room_docs(store: DocumentStore, registry: RoomRegistry, room_id: str) -> None:
    """Close every socket of the room (4404) and delete each of its docs."""
    registry.close_room(room_id, 4404, "room deleted")
    stored = {info.name: info.generation for info in await store.list_docs(room_id)}
    names = set(stored)
    for key in registry.loaded_keys(room_id):
        await registry.drop(key, 4404, "room deleted")
        names.add(key.doc)
    for name in sorted(names):
        await store.delete_doc(DocKey(room_id, name))
        registry.announce_deleted(DocKey(room_id, name), stored.get(name))


async def retire_room_bots(request: Request, room_id: str) -> None:
    """The room's bots and incoming hooks end with it, as if each were deleted: a bot is
    disabled (it may be a member of other rooms), its tokens revoked, its sockets closed;
    the hooks revoked. Their rows then go with the room's (``delete_room``), so a room made
    later under the same id inherits none of them."""
    shared = services(request)
    meta = shared.meta
    for hook in await meta.list_incoming_hooks(room_id):
        await meta.revoke_incoming_hook(room_id, hook.id)
    for bot in await meta.list_bots(room_id):
        await meta.set_user_disabled(bot.user_id, True)
        for token in await meta.list_api_tokens(bot.user_id):
            await meta.revoke_api_token(token.id, bot.user_id)
        shared.registry.revoke(4401, "bot removed", _of_user(bot.user_id), user=bot.user_id)


def _of_user(user_id: str) -> Callable[[Peer], bool]:
    return lambda peer: peer.principal is not None and peer.principal.user_id == user_id


@api_endpoint
async def delete_room(request: Request) -> Response:
    """Delete a room, its documents and its memberships (owner); open sockets get 4404."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, NOT_IN_DM)
    # First, nobody may rejoin meanwhile; its event is recorded in the same step, so it can
    # never land after someone else re-creates the id (and show in that room's log).
    event = access.event(request, principal, "room.delete", room_id=room_id)
    await retire_room_bots(request, room_id)
    await services(request).meta.delete_room(room_id, event)
    await delete_room_docs(services(request).store, services(request).registry, room_id)
    await services(request).search.drop_room(room_id)
    return Response(status_code=204)
