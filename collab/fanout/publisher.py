"""The doc streams' writer: what a node publishes, queued and sent in pipelined round trips.

``put`` queues an entry (bounded; the oldest goes first when full) and one task (``run``) sends
what is queued in round trips of at most ``PUBLISH_BATCH`` entries and ``BATCH_BYTES`` of
updates (``take_batch``): ``XADD key MAXLEN ~ n`` per entry and ``EXPIRE key ttl`` per
key, so streams stay short and idle ones vanish. A send that fails goes back in front and is
sent again once Redis answers a ping: the other nodes cannot tell an entry was lost, and would
only find it at their next head check. A batch that failed ``SEND_ATTEMPTS`` times with Redis
answering between is counted and dropped (the store has it), as is at once one that failed
for any reason but Redis. An entry sent twice (the first try landed, its reply did not) is
skipped by its readers: they hold its sequence number.

A Redis that answers but takes no writes (a replica after a failover: READONLY; OOM; see
``connect.fails_round_trip``) fails the round trip too, and a ping would not tell when it takes
them again: the publisher then waits for a probe write (``SET`` of ``probe_key``, which expires)
instead, and its idle connections are closed, so a URL moved to the new primary is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from collab.fanout.base import Entry, FanoutStats
from collab.fanout.connect import fails_round_trip
from collab.fanout.entries import encode_entry

log = logging.getLogger("collab.fanout")

STREAM_MAXLEN = 2000  # entries kept per doc stream (approximately): a reader this far behind fills
STREAM_TTL = 600  # seconds an idle doc's stream lives
QUEUE_LIMIT = 10_000  # entries waiting to be published
PUBLISH_BATCH = 512  # entries per pipelined round trip, at most ...
BATCH_BYTES = 8 * 1024 * 1024  # ... and update bytes (one entry carries up to 1 MiB)
SEND_ATTEMPTS = 3  # tries of one batch (Redis answering a probe between) before it is dropped
BACKOFF = (0.05, 2.0)  # first and longest pause before pinging a Redis that failed again
PROBE_TTL_MS = 10_000  # the probe write's key expires: nothing is left behind


class StreamPublisher:
    """``probe_key``: the key a probe write sets after Redis refused writes (module docstring;
    without one, a ping is the probe)."""

    def __init__(self, redis: Redis, stats: FanoutStats, probe_key: str | None = None) -> None:
        self.redis = redis
        self.stats = stats
        self.probe_key = probe_key
        self.ok = True  # the last send (or probe) worked
        self._refused = False  # the last failure was a refusal of writes, not a lost Redis
        self._queue: deque[tuple[str, Entry]] = deque()
        self._queued = asyncio.Event()
        self._drained = asyncio.Event()  # nothing queued or being sent
        self._drained.set()
        self._attempts = 0  # failed sends of the batch that starts with ``_failing``
        self._failing: Entry | None = None
        self._failing_len = 0

    def put(self, skey: str, entry: Entry) -> None:
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popleft()
            self.stats.publish_dropped += 1
        self._queue.append((skey, entry))
        self._drained.clear()
        self._queued.set()

    async def drained(self) -> None:
        """Return once nothing is queued or being sent."""
        await self._drained.wait()

    def drop_queued(self) -> None:
        self.stats.publish_dropped += len(self._queue)
        self._queue.clear()

    async def run(self) -> None:
        pause = BACKOFF[0]
        while True:
            if not self.ok:
                # Down: wait for Redis to answer again (what queues meanwhile goes then).
                try:
                    await self._probe()
                except RedisError:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, BACKOFF[1])
                    continue
                log.info("fan-out: publishing again")
                self.ok = True
                pause = BACKOFF[0]
            if not self._queue:
                self._drained.set()
                await self._queued.wait()
                self._queued.clear()
                continue
            batch = self.take()
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                self.stats.publish_dropped += len(batch)  # closing: neither sent nor queued
                raise
            except RedisError as exc:
                self.stats.errors += 1
                log.warning("fan-out: publishing failed, Redis unhealthy: %r", exc)
                self.ok = False
                self.failed(batch)
                self._refused = isinstance(exc, ResponseError)
                if self._refused:  # a URL moved to another server is followed by new ones
                    with contextlib.suppress(RedisError, OSError):
                        await self.redis.connection_pool.disconnect(inuse_connections=False)
            except Exception:
                # Not Redis (a bug): sent again it would fail again. Dropped (the store has
                # it) rather than ending the one task that publishes while ``ok`` stays True.
                self.stats.errors += 1
                self.stats.publish_dropped += len(batch)
                self._attempts, self._failing = 0, None
                log.exception("fan-out: publishing failed, %d entries dropped", len(batch))
            else:
                self._attempts, self._failing = 0, None

    def take(self) -> list[tuple[str, Entry]]:
        """The next round trip's entries (``take_batch``); something must be queued. A batch
        that failed is taken again as it was, so what was queued since gets its own tries."""
        if self._queue[0][1] is self._failing:
            return [self._queue.popleft() for _ in range(min(self._failing_len, len(self._queue)))]
        self._attempts = 0  # another batch (the failed one was sent, dropped or pushed out)
        return take_batch(self._queue)

    def failed(self, batch: list[tuple[str, Entry]]) -> None:
        """Put a batch Redis failed back in front (within the queue's bound), or drop it for
        good after ``SEND_ATTEMPTS`` tries."""
        self._attempts += 1
        self._failing, self._failing_len = batch[0][1], len(batch)
        if self._attempts >= SEND_ATTEMPTS:
            self._attempts, self._failing = 0, None
            self.stats.publish_dropped += len(batch)
            log.warning(
                "fan-out: dropped %d entries after %d failed sends", len(batch), SEND_ATTEMPTS
            )
            return
        self._queue.extendleft(reversed(batch))
        while len(self._queue) > QUEUE_LIMIT:
            self._queue.popleft()
            self.stats.publish_dropped += 1

    async def _probe(self) -> None:
        """Return once Redis would take a send again: it answers a ping, or after a refusal
        of writes, takes a write."""
        if self._refused and self.probe_key is not None:
            await self.redis.set(self.probe_key, b"1", px=PROBE_TTL_MS)
        else:
            await self.redis.ping()
        self._refused = False

    async def _send(self, batch: list[tuple[str, Entry]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for skey, entry in batch:
                fields: dict[Any, Any] = encode_entry(entry)
                pipe.xadd(skey, fields, maxlen=STREAM_MAXLEN, approximate=True)
            for skey in {skey for skey, _ in batch}:
                pipe.expire(skey, STREAM_TTL)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            if fails_round_trip(result):
                raise result  # nothing counted: the batch is sent again, or dropped, whole
        for result in results[: len(batch)]:
            if isinstance(result, Exception):
                self.stats.publish_dropped += 1  # WRONGTYPE: that doc's readers poll
            else:
                self.stats.published += 1


def take_batch(queue: deque[tuple[str, Entry]]) -> list[tuple[str, Entry]]:
    """The next round trip's entries, oldest first: up to ``PUBLISH_BATCH`` of them and
    ``BATCH_BYTES`` of updates (at least one entry, however large), so one round trip stays
    well inside the command timeout."""
    batch = [queue.popleft()]
    size = len(batch[0][1].update or b"")
    while queue and len(batch) < PUBLISH_BATCH:
        more = len(queue[0][1].update or b"")
        if size + more > BATCH_BYTES:
            break
        batch.append(queue.popleft())
        size += more
    return batch
