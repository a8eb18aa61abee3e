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
rechecks what notices are hints for (``on_notice_resync``: roles, credentials, feeds).
Numbering notices per publishing node would not be exact: a node that restarts numbers from the
start again, a reader cannot tell a trimmed first notice from one published before it started
reading, and a node whose notices were all trimmed shows no jump until it publishes again.
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


class NoticeChannel:
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
        self.redis = redis
        self.key = key
        self._unchecked: bytes | None = None  # the oldest cursor a batch followed, not checked
        self._checking: asyncio.Task[None] | None = None

    def deliver(self, entries: list[tuple[bytes, object]], after: bytes) -> None:
        if entries and self.redis is not None:
            self._check_later(after)
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

    def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()

    async def checked(self) -> None:
        """Return once the gap checks asked for so far are done."""
        if self._checking is not None:
            await asyncio.wait([self._checking])

    def _check_later(self, after: bytes) -> None:
        """Ask the stream about a gap past ``after``; one check at a time, from the oldest
        cursor not yet checked (a gap past it covers every later one)."""
        try:
            older = self._unchecked is None or stream_id(after) < stream_id(self._unchecked)
        except BadEntry:  # not an id Redis gave: ask from the stream's start
            after, older = b"0-0", True
        if older:
            self._unchecked = after
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._check_gaps())

    async def _check_gaps(self) -> None:
        assert self.redis is not None
        while self._unchecked is not None:
            after, self._unchecked = self._unchecked, None
            try:
                gap = trimmed_past(await self.redis.xinfo_stream(self.key), after)
            except RedisError as exc:
                log.debug("fan-out: cannot tell whether notices were trimmed: %r", exc)
                gap = True  # cannot tell: recheck, which is always correct
            except Exception:  # not Redis: the same, or this check (and the loop) were lost
                log.exception("fan-out: the notice gap check failed")
                gap = True
            if gap:
                self.stats.notice_gaps += 1
                log.info("fan-out: notices were trimmed before this node read them: rechecking")
                self.resync()


class AwarenessChannel:
    def __init__(self, watcher: AwarenessWatcher, node: str, stats: FanoutStats) -> None:
        self.watcher = watcher
        self.node = node
        self.stats = stats

    def deliver(self, entries: list[tuple[bytes, object]], after: bytes) -> None:
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
