"""Notices, shared awareness, heartbeats and rate limits over Redis: the part of ``RedisFanout``
it inherits (the rate limits are ``collab.fanout.limits``'s).

Reading goes through the fan-out's one ``XREAD`` (``open_channel``): the node-wide notice
stream, and each followed doc's stream of awareness changes. Writing is one task: it sends what
is queued (notices: ``XADD``; awareness records: ``SET_SCRIPT``, which refuses another
principal's client id and keeps the doc's hash of current states) in one pipelined round trip,
and beats this node's heartbeat every ``BEAT`` seconds (a key that expires after
``ALIVE_TTL``), so the others can tell a dead node from a quiet one. A failed send is retried
(the queue is bounded, the oldest goes first); a refused record is reported to its watcher.

What is read is decoded and handed on by ``collab.fanout.channels`` (which also finds the
notices trimmed before this node read them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from collab.fanout.base import (
    AwarenessRecord,
    AwarenessWatcher,
    FanoutStats,
    Notice,
    NoticeWatcher,
)
from collab.fanout.channels import AwarenessChannel, Channel, NoticeChannel, guarded
from collab.fanout.connect import fails_round_trip
from collab.fanout.entries import BadEntry
from collab.fanout.limits import SharedLimiter, SharedLimits
from collab.fanout.records import (
    FORGET_SCRIPT,
    SET_SCRIPT,
    alive_key,
    awareness_keys,
    decode_client,
    decode_record,
    encode_notice,
    encode_record,
    notice_key,
)
from collab.names import DocKey
from collab.ratelimit import RateLimiter

log = logging.getLogger("collab.fanout")

NOTICE_MAXLEN = 1000  # notices kept (approximately): they are hints, read within a second
NOTICE_TTL = 3600  # seconds the notice stream outlives its last notice
# Changes kept per doc's awareness stream; also the batch size from which a reader asks about a
# trim (channels.AwarenessChannel), exact while the reader's XREAD count is not below it.
AWARENESS_MAXLEN = 200
AWARENESS_TTL = 3600.0  # seconds a shared state lives unless renewed (clients renew often)
AWARENESS_CAP = 1024  # shared states per doc; past it a new client id stays on its node
BEAT = 2.0  # seconds between heartbeats
ALIVE_TTL = 8.0  # seconds a heartbeat lasts: a node silent this long counts as dead
QUEUE_LIMIT = 10_000  # notices and records waiting to be sent
BATCH = 256  # of each per round trip
BACKOFF = (0.05, 2.0)


class Reader(Protocol):
    """The fan-out's reader (``RedisFanout``)."""

    async def open_channel(self, skey: str, channel: Channel) -> None: ...
    def close_channel(self, skey: str, channel: Channel) -> None: ...


_Queued = tuple[DocKey, AwarenessRecord, AwarenessWatcher]


class Sharing:
    """The Fanout methods for notices, awareness, heartbeats and rate limits (``RedisFanout``
    inherits them); ``redis`` is its command client, ``reader`` its XREAD loop."""

    def __init__(
        self, redis: Redis, reader: Reader, node: str, prefix: str, stats: FanoutStats
    ) -> None:
        self.redis = redis
        self.reader = reader
        self.node = node
        self.prefix = prefix
        self.stats = stats
        self._set = redis.register_script(SET_SCRIPT)
        self._forget = redis.register_script(FORGET_SCRIPT)
        self._notices: deque[Notice] = deque()
        self._records: deque[_Queued] = deque()
        self._wake = asyncio.Event()
        self._last_beat = 0.0
        self._sending = False  # a round trip is in flight
        self._round = asyncio.Event()  # set after each round trip, sent or failed
        self._notice_channel: NoticeChannel | None = None
        self._followed: dict[DocKey, AwarenessChannel] = {}
        self._limits = SharedLimits(redis, prefix, stats)

    def limiter(self, kind: str, local: RateLimiter) -> SharedLimiter:
        return self._limits.limiter(kind, local)

    # -- notices -------------------------------------------------------------------------------

    async def watch_notices(self, watcher: NoticeWatcher) -> None:
        nkey = notice_key(self.prefix)
        if self._notice_channel is not None:
            self._notice_channel.close()
        channel = NoticeChannel(watcher, self.node, self.stats, self.redis, nkey)
        self._notice_channel = channel
        await self.reader.open_channel(nkey, channel)

    def notify(self, notice: Notice) -> None:
        if len(self._notices) >= QUEUE_LIMIT:
            self._notices.popleft()
            self.stats.publish_dropped += 1
        self._notices.append(dataclasses.replace(notice, node=self.node, sent_at=time.time()))
        self._wake.set()

    # -- awareness -----------------------------------------------------------------------------

    async def follow_awareness(
        self, key: DocKey, watcher: AwarenessWatcher
    ) -> list[AwarenessRecord]:
        _, skey = awareness_keys(self.prefix, key)
        previous = self._followed.pop(key, None)
        if previous is not None:
            previous.close()
            self.reader.close_channel(skey, previous)
        channel = AwarenessChannel(
            watcher, self.node, self.stats, self.redis, skey, full=AWARENESS_MAXLEN
        )
        self._followed[key] = channel
        await self.reader.open_channel(skey, channel)  # changes after this: read from the stream
        return await self.awareness_states(key)  # before: in the hash (in both: clocks say)

    async def awareness_states(self, key: DocKey) -> list[AwarenessRecord]:
        hkey, _ = awareness_keys(self.prefix, key)
        try:
            found: Any = await self.redis.hgetall(hkey)
        except RedisError as exc:
            log.warning("fan-out: cannot read the awareness of %s: %r", key, exc)
            return []
        now, records = time.time(), list[AwarenessRecord]()
        for field, value in (found or {}).items():
            try:
                record = decode_record(decode_client(field), value)
            except BadEntry as exc:
                self.stats.bad_entries += 1
                log.warning("fan-out: skipped a shared state of %s: %s", key, exc)
                continue
            if record.node != self.node and record.state is not None and record.expires >= now:
                records.append(record)
        return records

    def unfollow_awareness(self, key: DocKey, watcher: AwarenessWatcher) -> None:
        channel = self._followed.get(key)
        if channel is not None and channel.watcher is watcher:
            del self._followed[key]
            channel.close()
            self.reader.close_channel(awareness_keys(self.prefix, key)[1], channel)

    def publish_awareness(
        self, key: DocKey, records: list[AwarenessRecord], watcher: AwarenessWatcher
    ) -> None:
        expires = time.time() + AWARENESS_TTL
        for record in records:
            if len(self._records) >= QUEUE_LIMIT:
                self._records.popleft()
                self.stats.publish_dropped += 1
            stamped = dataclasses.replace(record, node=self.node, expires=expires)
            self._records.append((key, stamped, watcher))
        self._wake.set()

    async def nodes_alive(self, nodes: set[str]) -> set[str] | None:
        names = sorted(nodes)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for node in names:
                    pipe.exists(alive_key(self.prefix, node))
                found = await pipe.execute()
        except RedisError:
            return None
        return {node for node, there in zip(names, found, strict=True) if there}

    async def forget_awareness(self, key: DocKey, node: str, clients: list[int]) -> None:
        hkey, _ = awareness_keys(self.prefix, key)
        try:
            await self._forget(keys=[hkey], args=[node, *clients])
        except RedisError as exc:
            log.debug("fan-out: could not drop %s's states of %s: %r", node, key, exc)

    async def _stop_sharing(self) -> None:
        """Stop what runs beside the tasks the owner cancels (the gap checks), and wait for
        it: the clients they use are closed next."""
        channels: list[NoticeChannel | AwarenessChannel] = [*self._followed.values()]
        if self._notice_channel is not None:
            channels.append(self._notice_channel)
        for channel in channels:
            channel.close()
        for channel in channels:
            await channel.checked()

    async def _shared(self) -> None:
        """Return once nothing is queued (a closing node's last removals are sent)."""
        while self._notices or self._records or self._sending:
            self._round.clear()
            await self._round.wait()

    # -- the writer ----------------------------------------------------------------------------

    async def _share_forever(self) -> None:
        pause = BACKOFF[0]
        while True:
            due = self._last_beat + BEAT - time.monotonic()
            if not self._notices and not self._records and due > 0:
                try:
                    async with asyncio.timeout(due):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
                continue  # look again: something queued, or the beat is due
            try:
                await self._send_shared()
            except RedisError as exc:
                self.stats.errors += 1
                log.debug("fan-out: sending notices and awareness failed: %r", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
            except Exception:
                # Not Redis (a bug): what was taken is lost, not the one task that sends.
                self.stats.errors += 1
                log.exception("fan-out: sending notices and awareness failed")
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
            else:
                pause = BACKOFF[0]

    async def _send_shared(self) -> None:
        notices = [self._notices.popleft() for _ in range(min(BATCH, len(self._notices)))]
        records = [self._records.popleft() for _ in range(min(BATCH, len(self._records)))]
        beat = time.monotonic() >= self._last_beat + BEAT
        nkey = notice_key(self.prefix)
        self._sending = True
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if beat:
                    pipe.set(alive_key(self.prefix, self.node), b"1", px=int(ALIVE_TTL * 1000))
                for notice in notices:
                    fields: dict[Any, Any] = encode_notice(notice)
                    pipe.xadd(nkey, fields, maxlen=NOTICE_MAXLEN, approximate=True)
                if notices:
                    pipe.expire(nkey, NOTICE_TTL)
                for key, record, _ in records:
                    await self._set(
                        keys=list(awareness_keys(self.prefix, key)),
                        args=[
                            record.client,
                            encode_record(record),
                            record.principal,
                            "1" if record.state is None else "0",
                            AWARENESS_CAP,
                            int(AWARENESS_TTL * 1000),
                            AWARENESS_MAXLEN,
                            record.node,
                        ],
                        client=pipe,
                    )
                results = await pipe.execute(raise_on_error=False)
            for result in results:
                if fails_round_trip(result):
                    raise result
        except RedisError:
            self._requeue(notices, records)
            raise
        finally:
            self._sending = False
            self._round.set()
        if beat:
            self._last_beat = time.monotonic()
        skip = 1 if beat else 0
        self.stats.published += len(notices)
        self._settle(records, results[skip + len(notices) + (1 if notices else 0) :])

    def _settle(self, records: list[_Queued], results: list[Any]) -> None:
        for (_, record, watcher), result in zip(records, results, strict=False):
            if result == 1:
                self.stats.awareness_published += 1
                continue
            if isinstance(result, Exception):
                self.stats.publish_dropped += 1  # WRONGTYPE and the like: not shared
                continue
            self.stats.awareness_refused += 1
            if result == 0:  # another principal holds the id (-1: the doc's cap)
                guarded(
                    self.stats,
                    "reporting a refused awareness record",
                    watcher.on_awareness_refused,
                    record,
                )

    def _requeue(self, notices: list[Notice], records: list[_Queued]) -> None:
        """Put back what a failed round trip did not send (oldest first), within the bound."""
        self._notices.extendleft(reversed(notices))
        self._records.extendleft(reversed(records))
        for queue in (self._notices, self._records):
            while len(queue) > QUEUE_LIMIT:
                queue.popleft()
                self.stats.publish_dropped += 1
