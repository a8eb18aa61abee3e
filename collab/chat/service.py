"""``ChatService``: the server-side operations on a room's chat, shared by the API and the
chat socket's request messages (type 101).

Every write follows one order: check the caller's role and the input, then, under the room's
lock, write the row (the record of truth: idempotency, seq, tombstone) and record the change in
the live ``chat`` doc; then, outside the lock, wait for the doc's commit. What the caller then
answers is durable in both (DESIGN.md, "posted" survives kill -9). The lock keeps the doc's
changes in the order of the rows' transactions, so a slower write can never overwrite a newer
state of the same message; it is held for one row write, never for a doc commit. Every row
written is also handed to the ``ChatObserver`` (the search index's feed), right after it is
written.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from collab.chat.window import LiveWindow, chat_key
from collab.errors import BadRequest, Forbidden, MessageTooLong, NotFound
from collab.meta import Message, MetaStore, NewMessage, Role, ThreadProblem
from collab.settings import Settings
from collab.sync.registry import RoomRegistry

MAX_CLIENT_ID = 128
MAX_EMOJI = 32


@dataclass(frozen=True)
class Actor:
    """Who asks, as the caller's door established it (the role is the room's, via the policy)."""

    user_id: str
    name: str
    handle: str | None
    role: Role


class ChatObserver(Protocol):
    async def messages_written(self, room_id: str, messages: Sequence[Message]) -> None:
        """Rows just written (new, edited, deleted, reacted to), as the table now holds them.
        Called under the room's lock, in the order of the writes; it may wait (backpressure)
        but must not fail the write."""


class _Nobody:
    async def messages_written(self, room_id: str, messages: Sequence[Message]) -> None:
        pass


class ChatService:
    def __init__(
        self,
        meta: MetaStore,
        registry: RoomRegistry,
        window: LiveWindow,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        observer: ChatObserver | None = None,
    ) -> None:
        self.meta = meta
        self.registry = registry
        self.window = window
        self.settings = settings
        self.clock = clock
        self.observer: ChatObserver = observer or _Nobody()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- writes ------------------------------------------------------------------------

    async def post(
        self, room_id: str, actor: Actor, text: str, client_id: str, thread: str | None = None
    ) -> tuple[Message, bool]:
        """(the message, True) or, for a client id this author already posted here, (that
        message, False): a retry after a lost answer posts nothing twice."""
        _require(actor, Role.commenter, "posting")
        self.check_text(text)
        check_client_id(client_id)
        if thread is not None and not (0 < len(thread) <= MAX_CLIENT_ID):
            raise BadRequest("'thread' must be a message id")
        new = NewMessage(
            room_id=room_id,
            id=uuid.uuid4().hex,
            author=actor.user_id,
            author_name=actor.name,
            author_handle=actor.handle,
            client_id=client_id,
            text=text,
            created_at=self.clock(),
            thread=thread,
        )
        created = False

        async def store() -> list[Message]:
            nonlocal created
            try:
                message, created = await self.meta.post_message(new)
            except ThreadProblem as exc:
                raise (NotFound if exc.missing else BadRequest)(str(exc)) from None
            parent = await self.meta.get_message(room_id, thread) if thread and created else None
            return [message] if parent is None else [parent, message]

        changed = await self._write(room_id, store)
        return changed[-1], created

    async def edit(self, room_id: str, actor: Actor, message_id: str, text: str) -> Message:
        """New text; only the author may (and only while a commenter or above)."""
        _require(actor, Role.commenter, "editing")
        self.check_text(text)
        current = await self.get(room_id, message_id)
        if current.author != actor.user_id:
            raise Forbidden("only the author may edit a message")

        async def store() -> list[Message]:
            return [await self.meta.edit_message(room_id, message_id, text, self.clock())]

        return (await self._write(room_id, store))[0]

    async def delete(self, room_id: str, actor: Actor, message_id: str) -> tuple[Message, bool]:
        """Tombstone the message: its author may, and an owner may (moderation: the second
        value is True, for the caller to audit)."""
        current = await self.get(room_id, message_id)
        own = current.author == actor.user_id and actor.role >= Role.commenter
        if not own and actor.role < Role.owner:
            raise Forbidden("only the author or an owner may delete a message")

        async def store() -> list[Message]:
            return [await self.meta.delete_message(room_id, message_id, self.clock())]

        return (await self._write(room_id, store))[0], not own

    async def react(
        self, room_id: str, actor: Actor, message_id: str, emoji: str, add: bool
    ) -> Message:
        _require(actor, Role.commenter, "reacting")
        check_emoji(emoji)
        await self.get(room_id, message_id)

        async def store() -> list[Message]:
            return [await self.meta.react(room_id, message_id, emoji, actor.user_id, add)]

        return (await self._write(room_id, store))[0]

    async def _write(
        self, room_id: str, store: Callable[[], Awaitable[list[Message]]]
    ) -> list[Message]:
        live = await self.registry.acquire(chat_key(room_id))
        try:
            lock = self._locks.get(room_id)
            if lock is None:
                lock = self._locks[room_id] = asyncio.Lock()
            async with lock:
                changed = await store()
                await self.observer.messages_written(room_id, changed)
                committed = await self.window.write(live, changed)
            before, after = await committed
        finally:
            self.registry.release(live)
        if after > before:
            await self.meta.archive_messages(room_id, after, since_seq=before)
        return changed

    # -- reads -------------------------------------------------------------------------

    async def get(self, room_id: str, message_id: str) -> Message:
        found = await self.meta.get_message(room_id, message_id)
        if found is None:
            raise NotFound("no such message")
        return found

    async def history(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Live and archived messages alike, in seq order (see ``Messages.list_messages``)."""
        return await self.meta.list_messages(
            room_id, before_seq=before_seq, after_seq=after_seq, thread=thread, limit=limit
        )

    # -- checks ------------------------------------------------------------------------

    def check_text(self, text: str) -> None:
        if not text.strip():
            raise BadRequest("'text' must not be empty")
        if len(text) > self.settings.max_message_length:
            raise MessageTooLong(f"text longer than {self.settings.max_message_length} characters")
        if "\x00" in text:
            raise BadRequest("'text' must not contain NUL")


def _require(actor: Actor, minimum: Role, what: str) -> None:
    if actor.role < minimum:
        raise Forbidden(f"{what} requires the {minimum.name} role")


def check_client_id(client_id: str) -> None:
    if not (0 < len(client_id) <= MAX_CLIENT_ID) or not client_id.isascii():
        raise BadRequest(f"'client_id' must be 1-{MAX_CLIENT_ID} ASCII characters")
    if not client_id.isprintable() or " " in client_id:
        raise BadRequest("'client_id' must be printable, without spaces")


def check_emoji(emoji: str) -> None:
    if not (0 < len(emoji) <= MAX_EMOJI):
        raise BadRequest(f"an emoji is 1-{MAX_EMOJI} characters")
    if not emoji.isprintable() or any(c.isspace() or c == "/" for c in emoji):
        raise BadRequest("an emoji is printable, without spaces or '/'")
