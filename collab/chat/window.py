"""The live window: each loaded ``chat`` doc shows the latest ``chat_live_messages`` messages.

The ``messages`` table is the record of truth; the doc is its projection. When a chat doc is
loaded (``prepare``, the registry's load hook) it is made equal to the table's latest rows, so a
crash between a row's commit and the doc's repairs itself on the next load. After that, every
change goes through ``write``: the message's fields are set in the doc, and a post that takes
the window past its size deletes the oldest messages from the doc (a Yjs deletion in the same
doc, never a replacement), raising ``info.archived_through``. A message at or below that line
lives only in the table (the history API), and its later edits stay there.

A write shows its rows from inside its own transaction (``Shown``, told by the meta store), so
the doc's changes follow the rows' order, and the doc's update commits with the rows (one
fsync) before any reader is sent it.

The doc's ``reads`` is made equal to the members' public read markers on load too, and changed
through ``show_reads`` (``collab.chat.reads`` batches them).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from collab.chat.reads import private_readers
from collab.chat.schema import (
    drop_messages,
    drop_read,
    live_seqs,
    put_message,
    read_users,
    set_info,
    set_read,
)
from collab.errors import RoomFailed, must_propagate
from collab.meta import Message, MetaStore
from collab.names import DocKey
from collab.sync.livedoc import LiveDoc

CHAT = "chat"

log = logging.getLogger("collab.chat")


def chat_key(room_id: str) -> DocKey:
    return DocKey(room_id, CHAT)


@dataclass
class _Window:
    """(seq, id) of the messages in the doc, oldest first; the archive line below them."""

    live: deque[tuple[int, str]] = field(default_factory=deque)
    ids: set[str] = field(default_factory=set)
    archived_through: int = 0
    last_seq: int = 0


class LiveWindow:
    def __init__(self, messages: MetaStore, size: int) -> None:
        self.messages = messages
        self.size = size
        self._windows: weakref.WeakKeyDictionary[LiveDoc, _Window] = weakref.WeakKeyDictionary()

    async def prepare(self, live: LiveDoc) -> None:
        """Make a freshly loaded chat doc equal to the table's latest rows (other docs: no-op)."""
        if live.key.doc != CHAT:
            return
        room_id = live.key.room
        rows = await self.messages.list_messages(room_id, limit=self.size) if self.size else []
        last_seq = rows[-1].seq if rows else await self.messages.last_seq(room_id)
        window = _Window(
            deque((m.seq, m.id) for m in rows),
            {m.id for m in rows},
            rows[0].seq - 1 if rows else last_seq,
            last_seq,
        )

        reads = await self._public_reads(room_id)

        def change(doc: Doc[Any]) -> None:
            stale = [i for i in live_seqs(doc) if i not in window.ids]
            drop_messages(doc, stale)
            for message in rows:
                put_message(doc, message)
            set_info(doc, window.last_seq, window.archived_through)
            for user_id in read_users(doc) - reads.keys():
                drop_read(doc, user_id)
            for user_id, seq in reads.items():
                set_read(doc, user_id, seq)

        await (await live.author(change))
        self._windows[live] = window
        await self.messages.archive_messages(room_id, window.archived_through)

    async def shown_in(self, live: LiveDoc) -> Shown:
        """A ``Written`` (``collab.meta.messages``) that shows a write's rows in ``live``
        from inside the write's transaction."""
        if live not in self._windows:  # loaded without the hook (cannot happen once wired)
            await self.prepare(live)
        return Shown(self, live)

    def show(self, live: LiveDoc, changed: list[Message]) -> asyncio.Future[tuple[int, int]]:
        """Show ``changed`` (new or updated rows, in seq order) in the doc, now. Returns what
        to await for the doc's commit: it yields the archive line before and after (equal
        when it did not move). RoomFailed when the doc cannot take a change."""
        window = self._windows[live]
        moved_from = window.archived_through
        dropped: list[str] = []

        def change(doc: Doc[Any]) -> None:
            for message in changed:
                if message.id in window.ids:
                    put_message(doc, message)
                elif message.seq > window.last_seq:
                    put_message(doc, message)
                    window.live.append((message.seq, message.id))
                    window.ids.add(message.id)
                    window.last_seq = message.seq
            while len(window.live) > self.size:
                seq, message_id = window.live.popleft()
                window.ids.discard(message_id)
                window.archived_through = seq
                dropped.append(message_id)
            drop_messages(doc, dropped)
            set_info(doc, window.last_seq, window.archived_through)

        committed = live.author_now(change)
        return _then(committed, (moved_from, window.archived_through))

    async def _public_reads(self, room_id: str) -> dict[str, int]:
        """The room's members' read markers, but for the private ones."""
        markers = await self.messages.list_read_markers(room_id)
        private = await private_readers(self.messages, (m.user_id for m in markers))
        return {m.user_id: m.up_to for m in markers if m.user_id not in private and m.up_to > 0}

    async def show_reads(
        self, live: LiveDoc, shown: dict[str, int], hidden: list[str]
    ) -> asyncio.Future[None]:
        """Set these users' markers in the doc's ``reads`` and remove those of ``hidden``
        (private ones). Returns what to await for the doc's commit."""

        def change(doc: Doc[Any]) -> None:
            for user_id in hidden:
                drop_read(doc, user_id)
            for user_id, seq in shown.items():
                set_read(doc, user_id, seq)

        return await live.author(change)


class Shown:
    """Shows a write's rows in the chat doc from inside the write's transaction (the
    ``Written`` of ``collab.meta.messages``): rows are shown in the order of the writes, and
    the doc's update joins the rows' transaction (one commit for both; ``collab.db``). If that
    transaction fails, the doc is given up (its peers reconnect to a fresh load, made equal to
    the table): nobody keeps a message the table does not have."""

    def __init__(self, window: LiveWindow, live: LiveDoc) -> None:
        self.window = window
        self.live = live
        self.changed: list[Message] = []
        self._committed: asyncio.Future[tuple[int, int]] | None = None
        self._failure: BaseException | None = None

    def rows(self, rows: list[Message]) -> None:
        self.changed = rows
        try:
            self._committed = self.window.show(self.live, rows)
        except BaseException as exc:  # the rows stand: the doc's next load shows them
            if must_propagate(exc):
                raise
            self._failure = exc if isinstance(exc, RoomFailed) else RoomFailed()
            if not isinstance(exc, RoomFailed):  # yrs refused the change: give the doc up
                log.error("could not show chat rows in %s: %r", self.live.key, exc)
                self.live.fail(self._failure)

    def rolled_back(self) -> None:
        self.live.fail(RoomFailed("a chat write shown in this doc was rolled back"))

    async def committed(self) -> tuple[int, int]:
        """Once the doc's change is durable (and relayed): the archive line before and after."""
        if self._failure is not None:
            raise self._failure
        if self._committed is None:
            raise RoomFailed("the chat write was never shown")
        return await self._committed


def _then(
    committed: asyncio.Future[None], value: tuple[int, int]
) -> asyncio.Future[tuple[int, int]]:
    result: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    def done(future: asyncio.Future[None]) -> None:
        if result.done():
            return
        if future.cancelled():
            result.cancel()
        elif (exc := future.exception()) is not None:
            result.set_exception(exc)
        else:
            result.set_result(value)

    committed.add_done_callback(done)
    return result
