"""``ChatService``: the server-side operations on a room's chat, shared by the API and the
chat socket's request messages (type 101).

Every write follows one order: check the caller's role and the input, then write the row (the
record of truth: idempotency, seq, tombstone) and, from inside the row's transaction, record the
change in the live ``chat`` doc (``LiveWindow.shown_in``, a ``collab.meta.Written``); the doc's
update joins the rows' group commit (``collab.db``), so one fsync makes both durable, and only
then is the update relayed and the caller answered. What the caller answers is durable in both
(DESIGN.md, "posted" survives kill -9). Rows are shown in the order of their writes, so a slower
write can never overwrite a newer state of the same message; no lock is held across a commit,
and posts of every room and every user share each commit (one member's post never waits behind
another's burst, only for the next commit). If a transaction fails after its rows were shown,
the doc is given up and reloaded from the table. Every row written is also handed to the
``RowObserver`` (the search index's feed) once durable, retries included. A new, edited or
deleted message's outgoing webhook deliveries are inserted by the row's own transaction
(``outbox``: a ``collab.meta.WebhookOutbox`` for the write's event; a client id's retry
enqueues nothing), so a crash cannot keep the message and lose them, and the answer waits for
no second commit.

Read markers take their own path, in batches (``collab.chat.reads``): any member may mark, and
the doc's ``reads`` shows the markers that are not private. With other nodes (``announce``
set), a user's markers turning private or public is also a ``reads`` notice: every other node
does the same to the chat docs it has loaded (``collab.chat.readnodes``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collab.chat.mentions import mentioned_users
from collab.chat.reads import MarkerBatches, private_readers
from collab.chat.window import LiveWindow, chat_key
from collab.errors import BadRequest, Forbidden, MessageTooLong, NotFound
from collab.fanout import READS, Notice
from collab.meta import (
    Message,
    MetaStore,
    NewMessage,
    ReadMarker,
    Role,
    ThreadProblem,
    WebhookOutbox,
    Written,
)
from collab.settings import Settings
from collab.sync.registry import RoomRegistry

MAX_CLIENT_ID = 128
MAX_EMOJI = 32
MAX_ATTACHMENTS = 10

# The outgoing webhooks' deliveries of a message write, by event ("message.posted",
# "message.edited", "message.deleted"), for the write's own transaction to enqueue.
WebhookOutboxFor = Callable[[str], WebhookOutbox]
MAX_SEQ = 2**62


@dataclass(frozen=True)
class Actor:
    """Who asks, as the caller's door established it (the role is the room's, via the policy)."""

    user_id: str
    name: str
    handle: str | None
    role: Role


class RowObserver(Protocol):
    async def messages_written(self, room_id: str, messages: Sequence[Message]) -> None:
        """Rows just written (new, edited, deleted, reacted to), as the table holds them, once
        durable (writes of one message may be told out of order: the index keeps the entry of
        the latest version). It may wait (backpressure) but must not fail the write."""


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
        row_observer: RowObserver | None = None,
        outbox: WebhookOutboxFor | None = None,
    ) -> None:
        self.meta = meta
        self.registry = registry
        self.window = window
        self.settings = settings
        self.clock = clock
        self.row_observer: RowObserver = row_observer or _Nobody()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.outbox = outbox
        self._markers = MarkerBatches(self._write_reads)
        self.announce: Callable[[Notice], None] | None = None  # other nodes (None: one node)

    def reads_lock(self, room_id: str) -> asyncio.Lock:
        """The room's lock for its read markers' doc changes (one batch at a time)."""
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = asyncio.Lock()
        return lock

    # -- writes ------------------------------------------------------------------------

    async def post(
        self,
        room_id: str,
        actor: Actor,
        text: str,
        client_id: str,
        thread: str | None = None,
        attachments: object = (),
    ) -> tuple[Message, bool]:
        """(the message, True) or, for a client id this author already posted here, (that
        message, False): a retry after a lost answer posts nothing twice. ``attachments``
        are ids of files the room references (docs/files.md); with some, the text may be
        blank."""
        _require(actor, Role.commenter, "posting")
        check_client_id(client_id)
        try:
            files = await self.attachments(room_id, attachments)
        except BadRequest:
            # A retry whose attachment was removed since its post: answered with that post.
            posted = await self.meta.posted_message(room_id, actor.user_id, client_id)
            if posted is None:
                raise
            return posted, False
        self.check_text(text, blank=bool(files))
        if thread is not None and not (0 < len(thread) <= MAX_CLIENT_ID):
            raise BadRequest("'thread' must be a message id")
        mentions = await mentioned_users(self.meta, room_id, actor.user_id, text)
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
            attachments=files,
            mentions=mentions,
        )
        created = False

        async def store(shown: Written) -> None:
            nonlocal created
            try:
                outbox = self._outbox("message.posted")
                _, created = await self.meta.post_message(new, shown, outbox)
            except ThreadProblem as exc:
                raise (NotFound if exc.missing else BadRequest)(str(exc)) from None

        changed = await self._write(room_id, store)
        # A retry notifies too: the entries may be all that a crash kept from the first try.
        # Readers were sent the message already: a mentioned user may have marked it read.
        await self._notify(changed[-1], changed[-1].created_at, read_if_marked=True)
        return changed[-1], created

    async def edit(self, room_id: str, actor: Actor, message_id: str, text: str) -> Message:
        """New text; only the author may (and only while a commenter or above)."""
        _require(actor, Role.commenter, "editing")
        self.check_text(text)
        current = await self.get(room_id, message_id)
        if current.author != actor.user_id:
            raise Forbidden("only the author may edit a message")

        mentions = await mentioned_users(self.meta, room_id, actor.user_id, text)

        async def store(shown: Written) -> None:
            at = self.clock()
            outbox = self._outbox("message.edited")
            await self.meta.edit_message(room_id, message_id, text, at, mentions, shown, outbox)

        edited = (await self._write(room_id, store))[0]
        await self._notify(edited, edited.edited_at or self.clock())
        return edited

    async def delete(self, room_id: str, actor: Actor, message_id: str) -> tuple[Message, bool]:
        """Tombstone the message: its author may, and an owner may (moderation: the second
        value is True, for the caller to audit)."""
        current = await self.get(room_id, message_id)
        own = current.author == actor.user_id and actor.role >= Role.commenter
        if not own and actor.role < Role.owner:
            raise Forbidden("only the author or an owner may delete a message")

        async def store(shown: Written) -> None:
            outbox = self._outbox("message.deleted")
            await self.meta.delete_message(room_id, message_id, self.clock(), shown, outbox)

        deleted = (await self._write(room_id, store))[0]
        return deleted, not own

    async def react(
        self, room_id: str, actor: Actor, message_id: str, emoji: str, add: bool
    ) -> Message:
        _require(actor, Role.commenter, "reacting")
        check_emoji(emoji)
        await self.get(room_id, message_id)

        async def store(shown: Written) -> None:
            await self.meta.react(room_id, message_id, emoji, actor.user_id, add, shown)

        return (await self._write(room_id, store))[0]

    async def _notify(self, message: Message, at: float, *, read_if_marked: bool = False) -> None:
        """An inbox entry for each user the message mentions who has none for it yet (with
        ``read_if_marked``: read for whoever's marker already reaches it)."""
        if message.mentions and not message.deleted:
            added = await self.meta.add_inbox_entries(
                message, message.mentions, at, read_if_marked=read_if_marked
            )
            if added:  # the write's own signal came before them: the live counts look again
                self.registry.feeds.room_changed(message.room_id, everywhere=True)

    async def _write(
        self, room_id: str, store: Callable[[Written], Awaitable[None]]
    ) -> list[Message]:
        """Write rows with ``store``, which hands ``shown`` to the meta store: the rows are
        shown in the doc inside their transaction. The rows, once both are durable."""
        live = await self.registry.acquire(chat_key(room_id))
        try:
            shown = await self.window.shown_in(live)
            await store(shown)  # once it returns, the rows are durable
            try:
                before, after = await shown.committed()
            except BaseException:
                # The doc refused them (it failed meanwhile...): the rows stay, so they are
                # indexed all the same, and their caller is told of the failure.
                await self.row_observer.messages_written(room_id, shown.changed)
                raise
        finally:
            self.registry.release(live)
        await self.row_observer.messages_written(room_id, shown.changed)
        if after > before:
            await self.meta.archive_messages(room_id, after, since_seq=before)
        self.registry.feeds.room_changed(room_id, everywhere=True)  # unread counts, mentions
        return shown.changed

    def _outbox(self, event: str) -> WebhookOutbox | None:
        return None if self.outbox is None else self.outbox(event)

    # -- read markers ------------------------------------------------------------------

    async def mark_read(self, room_id: str, actor: Actor, up_to: int) -> int:
        """Move the actor's read marker forward to ``up_to`` (any member may; past the last
        message: to it); the marker after, durable, and shown in the doc unless private."""
        if not 0 <= up_to <= MAX_SEQ:
            raise BadRequest(f"'up_to' must be between 0 and {MAX_SEQ}")
        return await self._markers.submit(room_id, actor.user_id, up_to)

    async def _write_reads(self, room_id: str, wanted: dict[str, int]) -> dict[str, int]:
        """One batch of markers: one transaction, one doc change (``collab.chat.reads``)."""
        live = await self.registry.acquire(chat_key(room_id))
        try:
            async with self.reads_lock(room_id):
                found = await self.meta.set_read_markers(room_id, wanted)
                private = await private_readers(self.meta, found)
                shown = {u: seq for u, seq in found.items() if u not in private and seq > 0}
                committed = await self.window.show_reads(live, shown, sorted(private))
            await committed
        finally:
            self.registry.release(live)
        self.registry.feeds.room_changed(room_id, everywhere=True)  # readers' unread counts
        return found

    async def read_markers(self, room_id: str, viewer_id: str) -> list[ReadMarker]:
        """The room's markers a member may see: the public ones and their own."""
        markers = await self.meta.list_read_markers(room_id)
        private = await private_readers(self.meta, (m.user_id for m in markers))
        return [m for m in markers if m.user_id == viewer_id or m.user_id not in private]

    async def show_read_markers(self, user_id: str, public: bool, *, announce: bool = True) -> None:
        """After the user's markers turned private (or public again): remove them from (or
        put them back into) the ``reads`` of every loaded chat doc of their rooms, and of any
        being loaded (its load may have read the setting before it changed); a doc loaded
        later is made right by its load. With ``announce`` (the node whose API changed it),
        the other nodes are told first, to do the same with theirs."""
        if announce and self.announce is not None:
            self.announce(Notice(READS, "", user_id))
        rooms = [room for room, _ in await self.meta.list_rooms_for(user_id)]
        for room in [*rooms, *await self.meta.list_dms_for(user_id)]:
            live = self.registry.get(chat_key(room.id))
            if live is None and not self.window.preparing(room.id):
                continue
            live = await self.registry.acquire(chat_key(room.id))
            try:
                async with self.reads_lock(room.id):
                    seq = await self.meta.get_read_marker(room.id, user_id)
                    shown = {user_id: seq} if public and seq > 0 else {}
                    hidden = [] if shown else [user_id]
                    committed = await self.window.show_reads(live, shown, hidden)
                await committed
            finally:
                self.registry.release(live)

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

    async def attachments(self, room_id: str, ids: object) -> tuple[dict[str, Any], ...]:
        """The files ``ids`` name, as messages carry them; only files the room references
        (another room's file id is refused like one that does not exist)."""
        if not isinstance(ids, Sequence) or isinstance(ids, str):
            raise BadRequest("'attachments' must be a list of file ids")
        if len(ids) > MAX_ATTACHMENTS:
            raise BadRequest(f"at most {MAX_ATTACHMENTS} attachments")
        if not all(isinstance(file_id, str) for file_id in ids):
            raise BadRequest("'attachments' must be a list of file ids")
        found = []
        for file_id in dict.fromkeys(ids):
            record = await self.meta.get_file(room_id, file_id) if len(file_id) <= 64 else None
            if record is None:
                raise BadRequest(f"no such file in this room: {file_id[:64]!r}")
            found.append(record.attachment())
        return tuple(found)

    def check_text(self, text: str, *, blank: bool = False) -> None:
        if not blank and not text.strip():
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
    if not all(_emoji_char(c) for c in emoji) or any(c.isspace() or c == "/" for c in emoji):
        raise BadRequest("an emoji is printable, without spaces or '/'")


def _emoji_char(c: str) -> bool:
    """Printable, or the invisible joints of standard emoji sequences: the zero-width joiner
    (❤️‍🔥, 👨‍👩‍👧) and the tag characters of subdivision flags (🏴󠁧󠁢󠁥󠁮󠁧󠁿)."""
    return c.isprintable() or c == "\u200d" or "\U000e0020" <= c <= "\U000e007f"
