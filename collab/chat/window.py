"""The live window: each loaded ``chat`` doc shows the latest ``chat_live_messages`` messages.

The ``messages`` table is the record of truth; the doc is its projection. When a chat doc is
loaded (``prepare``, the registry's load hook) it is made equal to the table's latest rows, so a
crash between a row's commit and the doc's repairs itself on the next load. After that, every
change goes through ``write``: the message's fields are set in the doc, and a post that takes
the window past its size deletes the oldest messages from the doc (a Yjs deletion in the same
doc, never a replacement), raising ``info.archived_through``. A message at or below that line
lives only in the table (the history API), and its later edits stay there.

The doc's ``reads`` is made equal to the members' public read markers on load too, and changed
through ``show_reads`` (``collab.chat.reads`` batches them).
"""

from __future__ import annotations

import asyncio
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
from collab.meta import Message, MetaStore
from collab.names import DocKey
from collab.sync.livedoc import LiveDoc

CHAT = "chat"


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

    async def write(self, live: LiveDoc, changed: list[Message]) -> asyncio.Future[tuple[int, int]]:
        """Show ``changed`` (new or updated rows, in seq order) in the doc. Returns what to
        await for the doc's commit: it yields the archive line before and after (equal when
        it did not move)."""
        window = self._windows.get(live)
        if window is None:  # loaded without the hook (cannot happen once wired): load it now
            await self.prepare(live)
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

        committed = await live.author(change)
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
