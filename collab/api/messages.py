"""Chat messages: post, list and page (live and archived alike), edit, delete, react.

Every call starts like every room route (a non-member gets the same 404 as for a missing room),
then hands the caller's role to ``collab.chat.ChatService``, which decides the rest: commenters
and above post and react, only the author edits, the author or an owner deletes (audited as
``message.delete``, marked ``moderated`` when not the author's). A post answers only once the
message is durable, 201 the first time and 200 for a retry of the same ``client_id``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.chat import CHAT, Actor
from collab.chat.schema import fields
from collab.errors import BadRequest, Forbidden
from collab.meta import Message, Role
from collab.services import services


def message_json(message: Message, viewer: str | None = None) -> dict[str, Any]:
    """A message as the API shows it; its ``client_id`` only to its author."""
    found: dict[str, Any] = {**fields(message), "room": message.room_id}  # the doc's shape
    if viewer == message.author:
        found["client_id"] = message.client_id
    return found


async def chat_actor(request: Request, minimum: Role = Role.viewer) -> tuple[Actor, str]:
    """(the caller as the chat service sees them, the room id); 404 for non-members."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    role = await access.require_role(request, principal, room_id, minimum)
    if not principal.allows(room_id, CHAT):  # a room token or ticket for some docs only
        raise Forbidden("token not valid for this room's chat")
    return await actor_for(request, principal, role), room_id


async def actor_for(request: Request, principal: Principal, role: Role) -> Actor:
    user = await services(request).meta.get_user(principal.user_id)
    name = user.name if user is not None and user.name else principal.name
    handle = getattr(user, "handle", None)
    return Actor(principal.user_id, name, handle if isinstance(handle, str) else None, role)


def _message_param(request: Request) -> str:
    message_id = str(request.path_params["message"])
    if not (0 < len(message_id) <= 128) or not message_id.isascii():
        raise BadRequest("bad message id")
    return message_id


@api_endpoint
async def post_message(request: Request) -> Response:
    """Post a message (or a reply, with ``thread``); idempotent by ``client_id``."""
    actor, room_id = await chat_actor(request)
    body = await parsing.read_json(request)
    text = parsing.get_field(body, "text", str)
    client_id = parsing.get_field(body, "client_id", str)
    if text is None or client_id is None:
        raise BadRequest("'text' and 'client_id' are required")
    thread = parsing.get_field(body, "thread", str)
    attachments = body.get("attachments", ())
    message, created = await services(request).chat.post(
        room_id, actor, text, client_id, thread, attachments
    )
    return JSONResponse(message_json(message, actor.user_id), status_code=201 if created else 200)


@api_endpoint
async def list_messages(request: Request) -> Response:
    """Messages in seq order: ``cursor`` pages back (older), ``before_seq`` starts paging back
    below a seq (the workspace, past its ``chat`` doc's oldest), ``after_seq`` catches up."""
    actor, room_id = await chat_actor(request)
    limit = parsing.int_param(request, "limit", parsing.DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    after_seq = request.query_params.get("after_seq")
    thread = request.query_params.get("thread") or None
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    before: int | None = None
    if cursor is not None:
        if after_seq is not None or len(cursor) != 1 or not isinstance(cursor[0], int):
            raise BadRequest("bad cursor")
        if not 0 < cursor[0] <= 2**62:  # a seq: what the store can bind
            raise BadRequest("bad cursor")
        before = cursor[0]
    elif request.query_params.get("before_seq"):
        if after_seq is not None:
            raise BadRequest("'before_seq' and 'after_seq' do not go together")
        before = parsing.int_param(request, "before_seq", 1, 1, 2**62)
    after = parsing.int_param(request, "after_seq", 0, 0, 2**62) if after_seq else None
    found = await services(request).chat.history(
        room_id, before_seq=before, after_seq=after, thread=thread, limit=limit + 1
    )
    if after is not None:
        page, more = found[:limit], len(found) > limit
        next_cursor = None  # forwards: ask again with the last seq seen
    else:
        page, more = found[-limit:], len(found) > limit
        next_cursor = parsing.encode_cursor([page[0].seq]) if more and page else None
    return parsing.page_response([message_json(m, actor.user_id) for m in page], next_cursor)


@api_endpoint
async def get_message(request: Request) -> Response:
    """One message."""
    actor, room_id = await chat_actor(request)
    message = await services(request).chat.get(room_id, _message_param(request))
    return JSONResponse(message_json(message, actor.user_id))


@api_endpoint
async def edit_message(request: Request) -> Response:
    """Change a message's text (its author only)."""
    actor, room_id = await chat_actor(request)
    message_id = _message_param(request)
    text = parsing.get_field(await parsing.read_json(request), "text", str)
    if text is None:
        raise BadRequest("'text' is required")
    message = await services(request).chat.edit(room_id, actor, message_id, text)
    return JSONResponse(message_json(message, actor.user_id))


@api_endpoint
async def delete_message(request: Request) -> Response:
    """Delete a message (its author, or an owner): its text goes, a tombstone stays."""
    actor, room_id = await chat_actor(request)
    message_id = _message_param(request)
    message, moderated = await services(request).chat.delete(room_id, actor, message_id)
    principal = await access.require_principal(request)
    await access.audit(
        request,
        principal,
        "message.delete",
        room_id=room_id,
        target=message.id,
        author=message.author,
        moderated=moderated,
    )
    return Response(status_code=204)


async def _react(request: Request, add: bool) -> Response:
    actor, room_id = await chat_actor(request)
    message_id = _message_param(request)
    emoji = str(request.path_params["emoji"])  # percent-decoded by the router
    message = await services(request).chat.react(room_id, actor, message_id, emoji, add)
    return JSONResponse(message_json(message, actor.user_id))


@api_endpoint
async def add_reaction(request: Request) -> Response:
    """React to a message with an emoji (idempotent)."""
    return await _react(request, True)


@api_endpoint
async def remove_reaction(request: Request) -> Response:
    """Take back one's reaction (idempotent)."""
    return await _react(request, False)
