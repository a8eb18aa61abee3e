"""The live window: each loaded ``chat`` doc shows the latest ``chat_live_messages`` messages.

The ``messages`` table is the record of truth; the doc is its projection. When a chat doc is
loaded (``prepare``, the registry's load hook) it is made equal to the table's latest rows, so a
crash between a row's commit and the doc's repairs itself on the next load. After that, every
change goes through ``write``: the message's fields are set in the doc, and a post that takes
the window past its size deletes the oldest messages from the doc (a Yjs deletion in the same
doc, never a replacement), raising ``info.archived_through``. A message at or below that line
lives only in the table (the history API), and its later edits stay there.

The line is a function of the room's seqs, which are gapless: it is ``last_seq - size``. So
several nodes (one loaded copy of the doc each, kept in step by the fan-out) agree on it
without asking each other: each takes in what the others wrote before its own change (their
messages, drops and ``info``, noticed by the doc's version), moves the line from the highest
seq it knows, and never lowers ``info``. A copy that another node's update left showing an
archived message, or a lower ``info`` (two nodes' concurrent writes: the map keeps one), is
put right just after that update arrives (``_after_remote``), so every copy settles on the
latest ``size`` messages and the right ``info``. A message is one value in the doc, so two
nodes' concurrent writes of one message keep one of them, perhaps the earlier: a node whose
own write of a message (in the last ``span.RECHECK_S``) no longer shows after another node's
update reads the message's row again and shows it (``_recheck``: the row written last holds
both changes).

A write shows its rows from inside its own transaction (``Shown``, told by the meta store), so
the doc's changes follow the rows' order, and the doc's update commits with the rows (one
fsync) before any reader is sent it.

The doc's ``reads`` is made equal to the members' public read markers on load too, and changed
through ``show_reads`` (``collab.chat.reads`` batches them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
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
from collab.chat.span import WindowState
from collab.errors import RoomFailed, must_propagate
from collab.meta import Message, MetaStore
from collab.names import DocKey
from collab.sync.livedoc import LiveDoc

CHAT = "chat"

log = logging.getLogger("collab.chat")


def chat_key(room_id: str) -> DocKey:
    return DocKey(room_id, CHAT)


class LiveWindow:
    def __init__(self, messages: MetaStore, size: int) -> None:
        self.messages = messages
        self.size = size
        self._windows: weakref.WeakKeyDictionary[LiveDoc, WindowState] = weakref.WeakKeyDictionary()
        self._checking: weakref.WeakSet[LiveDoc] = weakref.WeakSet()
        self._preparing: dict[str, int] = {}  # room id -> chat docs of it being prepared
        self._rechecks: set[asyncio.Task[None]] = set()

    def preparing(self, room_id: str) -> bool:
        """Whether a chat doc of the room is being loaded (``prepare``): what it read of the
        markers may predate a change (a user's markers turned private) made meanwhile."""
        return room_id in self._preparing

    async def prepare(self, live: LiveDoc) -> None:
        """Make a freshly loaded chat doc equal to the table's latest rows (other docs: no-op).

        With several nodes, the loaded doc may already hold what another node wrote after the
        rows were read: newer messages are kept, and the line follows the highest seq known.
        (The doc's own line is not a floor: a larger window brings archived messages back.)"""
        if live.key.doc != CHAT:
            return
        room_id = live.key.room
        self._preparing[room_id] = self._preparing.get(room_id, 0) + 1
        try:
            await self._prepare(live, room_id)
        finally:
            self._preparing[room_id] -= 1
            if not self._preparing[room_id]:
                del self._preparing[room_id]

    async def _prepare(self, live: LiveDoc, room_id: str) -> None:
        # What the loaded doc holds before the table is read: every message in it that is real
        # has its row committed by then (the row commits first), so one past the rows read is
        # a leftover (a room deleted half-way), unlike one another node shows meanwhile.
        loaded = live_seqs(live.doc)
        rows = await self.messages.list_messages(room_id, limit=self.size) if self.size else []
        read_through = rows[-1].seq if rows else await self.messages.last_seq(room_id)
        window = WindowState(last_seq=read_through)

        reads = await self._public_reads(room_id)

        def change(doc: Doc[Any]) -> None:
            held = live_seqs(doc)
            newer = {i: s for i, s in held.items() if s > read_through and i not in loaded}
            window.last_seq = max([read_through, *newer.values()])
            window.move_line(self.size)
            line = window.archived_through
            shown = [m for m in rows if m.seq > line]
            for seq, message_id in sorted((s, i) for i, s in newer.items() if s > line):
                window.insert(seq, message_id)
            for message in shown:
                window.insert(message.seq, message.id)
            drop_messages(doc, [i for i in held if i not in window.ids])
            for message in shown:
                put_message(doc, message)
            set_info(doc, window.last_seq, window.archived_through)
            for user_id in read_users(doc) - reads.keys():
                drop_read(doc, user_id)
            for user_id, seq in reads.items():
                set_read(doc, user_id, seq)

        committed = await live.author(change)
        window.version = live.replica.version
        self._windows[live] = window
        live.after_remote = functools.partial(self._after_remote, live)
        if live.nodes is not None:
            window.watch(live.doc)
        await committed
        # The table's line follows, never below another node's (``keep``: read under the lock).
        await self.messages.archive_messages(room_id, window.archived_through, keep=self.size)

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

        def change(doc: Doc[Any]) -> None:
            if live.replica.version != window.version:
                window.take_in(doc)
            now = time.monotonic()
            for message in changed:
                if message.id in window.ids:
                    window.wrote(message.id, put_message(doc, message), now)
                elif message.seq > window.archived_through:  # below it: archived, table only
                    window.wrote(message.id, put_message(doc, message), now)
                    window.insert(message.seq, message.id)
            drop_messages(doc, window.move_line(self.size))
            set_info(doc, window.last_seq, window.archived_through)

        committed = live.author_now(change)
        window.version = live.replica.version
        return _then(committed, (moved_from, window.archived_through))

    def _after_remote(self, live: LiveDoc) -> None:
        """Another node's update was applied to ``live``: once this burst of them is in, make
        the doc show one window again (a no-op, committing nothing, when it does)."""
        if live not in self._checking:
            self._checking.add(live)
            asyncio.get_running_loop().call_soon(self._check, live)

    def _check(self, live: LiveDoc) -> None:
        self._checking.discard(live)
        if live not in self._windows or not live.usable:
            return
        try:
            committed = self.show(live, [])
        except RoomFailed:
            return  # failed or healing: its next load (or write) decides
        except BaseException as exc:  # yrs refused the change: give the doc up
            if must_propagate(exc):
                raise
            log.error("could not check the chat window of %s: %r", live.key, exc)
            live.fail(RoomFailed())
            return
        committed.add_done_callback(_retrieve)
        window = self._windows[live]
        window.watch(live.doc)  # the doc may have been rebuilt since the last check
        stale = window.overwritten(live.doc)
        if stale:
            task = asyncio.get_running_loop().create_task(self._recheck(live, stale))
            self._rechecks.add(task)
            task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, live: LiveDoc, ids: list[str]) -> None:
        """Show these messages' rows again: another node's concurrent write of each won in the
        doc over this node's, and only the row written last has both."""
        started = time.monotonic()
        try:
            rows = [await self.messages.get_message(live.key.room, i) for i in ids]
            window = self._windows.get(live)
            if window is None or not live.usable:
                return
            # A write of one of them here meanwhile showed a newer row: not this one.
            newer = {i for i, (at, _) in window.written.items() if at >= started}
            rows_now = sorted((m for m in rows if m and m.id not in newer), key=lambda m: m.seq)
            if rows_now:
                await self.show(live, rows_now)
        except RoomFailed:
            return  # failed or healing: its next load (or write) decides
        except Exception as exc:  # the next write of the message, or the next load, decides
            log.error("could not recheck chat messages of %s: %r", live.key, exc)

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
        window = self._windows.get(live)

        def change(doc: Doc[Any]) -> None:
            if window is not None and live.replica.version != window.version:
                window.take_in(doc)  # this change moves the version past what it saw
            for user_id in hidden:
                drop_read(doc, user_id)
            for user_id, seq in shown.items():
                set_read(doc, user_id, seq)

        committed = await live.author(change)
        if window is not None:
            window.version = live.replica.version
        return committed


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


def _retrieve(future: asyncio.Future[tuple[int, int]]) -> None:
    """A check's commit: nobody awaits it (a failed commit fails the doc, which says so)."""
    if not future.cancelled():
        future.exception()


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
