"""``SocketChat``: the chat socket's requests (type 101) carried out by ``ChatService``, with the
API's semantics and refusals (``collab.api.messages`` is the HTTP door to the same service).

A request is ``{"op", "client_id", ...}`` with the API's fields: ``post`` (``text``, optional
``thread`` and ``attachments``), ``edit`` (``id``, ``text``), ``delete`` (``id``), ``react``
and ``unreact`` (``id``, ``emoji``), ``read`` (``up_to``: the reply is ``{"client_id",
"up_to"}``, the marker after, as the API answers; any member may). Each spends one of the
user's chat writes (the same bucket as the API's), then the role is looked up through the
policy at request time, so a member downgraded a moment ago is refused at once. A post is
idempotent by ``client_id`` across the socket and the API alike; a delete is audited as the
API's is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from collab.auth.policy import room_role
from collab.auth.principal import Principal
from collab.chat.service import Actor, ChatService
from collab.errors import BadRequest, Rate, TooManyRequests
from collab.meta import AuditEvent, Message, MetaStore
from collab.ratelimit import Limiter
from collab.settings import Settings

MAX_ID = 128
OPS = ("post", "edit", "delete", "react", "unreact", "read")


def _field(request: Mapping[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string" if name in request else f"'{name}' missing")
    return value


def _optional(request: Mapping[str, Any], name: str) -> str | None:
    return None if request.get(name) is None else _field(request, name)


def _message_id(request: Mapping[str, Any]) -> str:
    message_id = _field(request, "id")
    if not (0 < len(message_id) <= MAX_ID) or not message_id.isascii():
        raise BadRequest("bad message id")
    return message_id


def _up_to(request: Mapping[str, Any]) -> int:
    value = request.get("up_to")
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest("'up_to' must be an integer" if "up_to" in request else "'up_to' missing")
    return value


class SocketChat:
    """``collab.sync.requests.ChatRequests`` over a ChatService."""

    def __init__(
        self, chat: ChatService, meta: MetaStore, settings: Settings, limiter: Limiter
    ) -> None:
        self.chat = chat
        self.meta = meta
        self.settings = settings
        self.limiter = limiter  # the API's chat-write bucket (Services.api_limits[Rate.chat])
        self._ops: dict[str, Callable[[str, Actor, Mapping[str, Any]], Awaitable[Message]]] = {
            "post": self._post,
            "edit": self._edit,
            "react": self._react,
            "unreact": self._unreact,
        }

    async def handle(
        self, room_id: str, principal: Principal, request: Mapping[str, Any], address: str | None
    ) -> dict[str, Any]:
        wait = await self.limiter.take(principal.user_id)
        if wait > 0:
            raise TooManyRequests(Rate.chat, wait, "too many chat writes")
        op = request.get("op")
        if not isinstance(op, str) or op not in OPS:
            raise BadRequest(f"'op' must be one of {', '.join(OPS)}")
        _field(request, "client_id")  # every request has one: its reply echoes it
        actor = await self._actor(room_id, principal)
        if op == "read":
            return {"up_to": await self.chat.mark_read(room_id, actor, _up_to(request))}
        if op == "delete":
            message = await self._delete(room_id, actor, request, address)
        else:
            message = await self._ops[op](room_id, actor, request)
        return {"id": message.id, "seq": message.seq}

    async def _actor(self, room_id: str, principal: Principal) -> Actor:
        """The caller as the API sees them: the policy's role now, the stored display name."""
        role = await room_role(self.meta, self.settings, principal, room_id)
        user = await self.meta.get_user(principal.user_id)
        name = user.name if user is not None and user.name else principal.name
        handle = getattr(user, "handle", None)
        return Actor(principal.user_id, name, handle if isinstance(handle, str) else None, role)

    async def _post(self, room_id: str, actor: Actor, request: Mapping[str, Any]) -> Message:
        text, client_id = _field(request, "text"), _field(request, "client_id")
        thread = _optional(request, "thread")
        attachments = request.get("attachments", ())
        message, _ = await self.chat.post(room_id, actor, text, client_id, thread, attachments)
        return message

    async def _edit(self, room_id: str, actor: Actor, request: Mapping[str, Any]) -> Message:
        message_id = _message_id(request)
        text = _field(request, "text")
        return await self.chat.edit(room_id, actor, message_id, text)

    async def _react(self, room_id: str, actor: Actor, request: Mapping[str, Any]) -> Message:
        return await self._reaction(room_id, actor, request, add=True)

    async def _unreact(self, room_id: str, actor: Actor, request: Mapping[str, Any]) -> Message:
        return await self._reaction(room_id, actor, request, add=False)

    async def _reaction(
        self, room_id: str, actor: Actor, request: Mapping[str, Any], *, add: bool
    ) -> Message:
        message_id = _message_id(request)
        emoji = _field(request, "emoji")
        return await self.chat.react(room_id, actor, message_id, emoji, add)

    async def _delete(
        self, room_id: str, actor: Actor, request: Mapping[str, Any], address: str | None
    ) -> Message:
        message, moderated = await self.chat.delete(room_id, actor, _message_id(request))
        event = AuditEvent(
            at=time.time(),
            action="message.delete",
            actor=actor.user_id,
            room_id=room_id,
            target=message.id,
            detail={"author": message.author, "moderated": moderated},
            ip=address,
        )
        await self.meta.record(event)
        return message
