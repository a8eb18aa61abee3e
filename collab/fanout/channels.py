"""The channels the fan-out's reader hands what it reads beside the docs' streams: the node-wide
notice stream (``NoticeChannel``) and a doc's awareness changes (``AwarenessChannel``), each
decoding strictly (``collab.fanout.records``: a bad value is skipped and counted, never fatal)
and catching its watcher's errors.

The notice stream is capped (``sharing.NOTICE_MAXLEN``), so a node that fell behind could lose
notices to trimming without a trace. After each batch of notices read, the channel asks the
stream (``XINFO STREAM``: one round trip per batch, and notices are rare) whether an entry newer
than the cursor the batch followed may have been removed (``records.trimmed_past``: a trim
removes the oldest entries only, so nothing unread went while the stream still holds the
cursor's own entry); if so, or if Redis cannot say, it counts a gap and
rechecks what notices are hints for (``on_notice_resync``: roles, credentials, feeds, read
markers).
Numbering notices per publishing node would not be exact: a node that restarts numbers from the
start again, a reader cannot tell a trimmed first notice from one published before it started
reading, and a node whose notices were all trimmed shows no jump until it publishes again.

A doc's awareness stream is capped too (``sharing.AWARENESS_MAXLEN``) and checked the same way
(``GapCheck``), but only after a batch of at least ``full`` changes: an approximate trim never
leaves fewer than ``MAXLEN`` entries, and all of them are newer than any it removed, so after a
trim past the cursor the next read finds at least ``min(MAXLEN, read count)`` unread changes
(awareness batches are frequent; a short one cannot follow a gap, and asks nothing). On a gap
the watcher reads the doc's current states again (``on_awareness_gap``), without republishing
its own: the trim took changes from the stream, never from the hash of current states.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from collab.fanout.base import AwarenessWatcher, FanoutStats, NoticeWatcher
from collab.fanout.entries import BadEntry
from collab.fanout.records import (
    decode_client,
    decode_notice,
    decode_record,
    stream_id,
    trimmed_past,
)

log = logging.getLogger("collab.fanout")


def guarded(stats: FanoutStats, what: str, call: Callable[..., Any], *args: object) -> None:
    """Hand something read to a receiver: its error is counted and logged, never the reader's
    (one bad receiver must not stop delivery to the others)."""
    try:
        call(*args)
    except Exception:
        stats.errors += 1
        log.exception("fan-out: %s failed", what)


class Channel(Protocol):
    """A stream the fan-out's reader follows beside the docs' streams."""

    def deliver(self, entries: list[tuple[bytes, object]], after: bytes) -> None:
        """Entries read past the cursor ``after``, in order. Must not raise."""

    def resync(self) -> None:
        """Entries may have been missed."""


class GapCheck:
    """Asks a capped stream, after a batch was read, whether an entry past the cursor the batch
    followed was removed before it was read (``records.trimmed_past``; module docstring); on a
    gap, or when Redis cannot say, calls ``on_gap``. One check at a time per stream, from the
    oldest cursor not yet checked (a gap past it covers every later one)."""

    def __init__(self, redis: Redis, key: str, what: str, on_gap: Callable[[], None]) -> None:
        self.redis = redis
        self.key = key
        self.what = what  # for the log: "notices", "awareness changes"
        self.on_gap = on_gap
        self._unchecked: bytes | None = None  # the oldest cursor a batch followed, not checked
        self._checking: asyncio.Task[None] | None = None

    def after(self, cursor: bytes) -> None:
        """A batch was read past ``cursor``: check it (soon, in a task of its own)."""
        try:
            older = self._unchecked is None or stream_id(cursor) < stream_id(self._unchecked)
        except BadEntry:  # not an id Redis gave: ask from the stream's start
            cursor, older = b"0-0", True
        if older:
            self._unchecked = cursor
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._check_gaps())

    def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()

    async def checked(self) -> None:
        """Return once the checks asked for so far are done."""
        if self._checking is not None:
            await asyncio.wait([self._checking])

    async def _check_gaps(self) -> None:
        while self._unchecked is not None:
            after, self._unchecked = self._unchecked, None
            try:
                gap = trimmed_past(await self.redis.xinfo_stream(self.key), after)
            except RedisError as exc:
                log.debug("fan-out: cannot tell whether %s were trimmed: %r", self.what, exc)
                gap = True  # cannot tell: read again, which is always correct
            except Exception:  # not Redis: the same, or this check (and the loop) were lost
                log.exception("fan-out: the gap check of %s failed", self.what)
                gap = True
            if gap:
                self.on_gap()


class _GapChecked:
    """What both channels do with their ``GapCheck`` (None: gaps are not asked about)."""

    gaps: GapCheck | None

    def close(self) -> None:
        if self.gaps is not None:
            self.gaps.close()

    async def checked(self) -> None:
        """Return once the gap checks asked for so far are done."""
        if self.gaps is not None:
            await self.gaps.checked()


class NoticeChannel(_GapChecked):
    """The notices read, to the watcher; and gaps trimming left, found (module docstring).
    ``redis`` and ``key``: the stream to ask about gaps (None: not asked)."""

    def __init__(
        self,
        watcher: NoticeWatcher,
        node: str,
        stats: FanoutStats,
        redis: Redis | None = None,
        key: str = "",
    ) -> None:
        self.watcher = watcher
        self.node = node
        self.stats = stats
        self.gaps = None if redis is None else GapCheck(redis, key, "notices", self._gap)

    def deliver(self, entries: list[tuple[bytes, object]], after: bytes) -> None:
        if entries and self.gaps is not None:
            self.gaps.after(after)
        for _, fields in entries:
            try:
                notice = decode_notice(fields)
            except BadEntry as exc:
                self.stats.bad_entries += 1
                log.warning("fan-out: skipped a notice: %s", exc)
                self.resync()  # it may have been one we needed
                continue
            if notice.node == self.node:
                continue
            self.stats.notices += 1
            guarded(self.stats, "a notice", self.watcher.on_notice, notice)

    def resync(self) -> None:
        guarded(self.stats, "notice resync", self.watcher.on_notice_resync)

    def _gap(self) -> None:
        self.stats.notice_gaps += 1
        log.info("fan-out: notices were trimmed before this node read them: rechecking")
        self.resync()


class AwarenessChannel(_GapChecked):
    """A doc's awareness changes read, to the watcher; and gaps trimming left, found (module
    docstring), on a batch of at least ``full`` changes only. ``redis`` and ``key``: the
    stream to ask about gaps (None: not asked)."""

    def __init__(
        self,
        watcher: AwarenessWatcher,
        node: str,
        stats: FanoutStats,
        redis: Redis | None = None,
        key: str = "",
        full: int = 1,
    ) -> None:
        self.watcher = watcher
        self.node = node
        self.stats = stats
        self.full = full
        self.gaps = None if redis is None else GapCheck(redis, key, "awareness changes", self._gap)

    def deliver(self, entries: list[tuple[bytes, object]], after: bytes) -> None:
        if len(entries) >= self.full and self.gaps is not None:
            self.gaps.after(after)
        now = time.time()
        for _, fields in entries:
            try:
                if not isinstance(fields, dict) or set(fields) != {b"c", b"v"}:
                    raise BadEntry("unexpected fields")
                record = decode_record(decode_client(fields[b"c"]), fields[b"v"])
            except BadEntry as exc:
                self.stats.bad_entries += 1
                log.warning("fan-out: skipped an awareness change: %s", exc)
                continue
            if record.node == self.node or (record.state is not None and record.expires < now):
                continue
            self.stats.awareness_received += 1
            guarded(self.stats, "an awareness change", self.watcher.on_awareness, record)

    def resync(self) -> None:
        guarded(self.stats, "awareness resync", self.watcher.on_awareness_resync)

    def _gap(self) -> None:
        self.stats.awareness_gaps += 1
        log.debug("fan-out: awareness changes were trimmed before this node read them")
        guarded(self.stats, "awareness gap", self.watcher.on_awareness_gap)
