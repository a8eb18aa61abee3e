"""The Redis Streams fan-out (``--fanout redis://...``): one stream per doc, one reader per node.

Publishing: ``publish`` stamps the entry and hands it to the node's ``StreamPublisher``
(``collab.fanout.publisher``): queued, pipelined, and sent again after a failure.
Updates of a doc no other node hosts are not published at all (``collab.fanout.hosts``:
a subscription joins, and the hosts of a doc find each other on its stream).

Reading: one task per node runs one blocking ``XREAD`` over the streams of every doc the node
hosts, each from its own cursor (no consumer groups: every node reads everything of its docs),
and the node's own wake-up stream, to which a new subscription adds an entry so the blocked
read ends and starts again with the new stream.
A subscription records the stream's last id when it starts (``XREVRANGE key + - COUNT 1``),
before the doc is loaded, so an entry published after the load's read is read from the stream
and one published before is in what the load read. Whenever the reader cannot promise that
(a lost connection: every cursor is fetched anew; a subscription made while Redis was down; an
unreadable entry), it tells the subscriber to resync from the store.

Beside the docs' streams the same read follows *channels* (``open_channel``): the node-wide
notice stream and each loaded doc's awareness changes (``collab.fanout.sharing``), each with
its own cursor and its own decoder, resynced like a doc when its cursor had to be fetched anew.

Isolation: an entry that is not one collab wrote is skipped and counted; a key that is not a
stream (``WRONGTYPE`` fails the whole ``XREAD``) is found with ``TYPE``, left out of the read
for a while and counted, so one poisoned key never stalls the other rooms. A subscriber that
raises is logged and counted, never fatal to the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError, ResponseError

from collab.fanout.base import HOST, UPDATE, Entry, FanoutStats, Subscriber
from collab.fanout.channels import Channel, guarded
from collab.fanout.connect import redis_client
from collab.fanout.entries import BadEntry, decode_entry, stream_key
from collab.fanout.here import HereBoard
from collab.fanout.hosts import Hosts
from collab.fanout.publisher import StreamPublisher
from collab.fanout.records import probe_key
from collab.fanout.sharing import Sharing
from collab.names import DocKey

log = logging.getLogger("collab.fanout")

BLOCK_MS = 1000  # one XREAD waits this long at most (a subscription wakes it at once)
WAKE_TTL = 3600  # seconds a node's wake-up stream outlives its last subscription
READ_COUNT = 256  # entries per stream per XREAD
COMMAND_TIMEOUT = 2.0  # seconds for a publish, a cursor fetch (a blackholed Redis: fail fast)
BAD_KEY_PAUSE = 30.0  # seconds a key that is not a stream stays out of the read
BACKOFF = (0.05, 2.0)  # first and longest pause before retrying after a failure
CLOSE_WAIT = 2.0  # seconds ``close`` waits for its tasks to end, twice at most


class RedisFanout(Sharing, HereBoard):
    """The fan-out over Redis; its notices, awareness and heartbeat come from ``Sharing``,
    room presence from ``HereBoard``."""

    def __init__(
        self,
        url: str,
        node: str,
        *,
        prefix: str = "collab",
        max_update: int = 64 * 1024 * 1024,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.url = url
        self.node = node
        self._own = node.encode()  # the ``node`` field of the entries this node publishes
        self.prefix = prefix
        self.max_update = max_update
        self.block_ms = block_ms
        self.stats = FanoutStats()
        self._commands = redis_client(url, timeout=COMMAND_TIMEOUT, connect_timeout=COMMAND_TIMEOUT)
        self._reader = redis_client(
            url,
            timeout=block_ms / 1000 + COMMAND_TIMEOUT,
            connect_timeout=COMMAND_TIMEOUT,
            single_connection=True,
        )
        self._subs: dict[str, tuple[DocKey, Subscriber]] = {}  # by stream key
        self._channels: dict[str, Channel] = {}  # other streams read, by key
        self._cursors: dict[str, bytes] = {}  # stream key -> last id read (subscribed keys)
        self._bad: dict[str, float] = {}  # stream key -> when to try reading it again
        self._subscribing: set[str] = set()  # cursors ``subscribe`` is fetching itself
        self._wake_key = f"{prefix}:wake:{node}"
        self._publisher = StreamPublisher(self._commands, self.stats, probe_key(prefix, node))
        self._hosts = Hosts(self._put)  # which docs another node hosts: only theirs publish
        self._dropped = 0  # ``stats.publish_dropped`` when ``publish`` last looked
        self._reader_ok = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        Sharing.__init__(self, self._commands, self, node, prefix, self.stats)

    # -- the Fanout protocol ---------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._reader_ok and self._publisher.ok

    def degraded(self, key: DocKey) -> bool:
        return not self.healthy or stream_key(self.prefix, key) in self._bad

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_forever()),
            loop.create_task(self._publisher.run()),
            loop.create_task(self._share_forever()),
        ]

    async def close(self) -> None:
        """Publish what is queued (a second at most: a stopping node's last commits reach the
        others now rather than at their next head check), then stop."""
        if self._tasks and self._publisher.ok:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._publisher.drained()
                    await self._shared()  # the last sockets' awareness removals too
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=CLOSE_WAIT)
            if pending:
                # A cancel lost inside the client's blocking read (seen with redis-py 8.1
                # under test runners): cut its connection, so the read ends and the loop,
                # seeing ``_closing``, returns.
                log.warning("fan-out: %d tasks ignored their cancel; cutting Redis", len(pending))
                await self._reader.connection_pool.disconnect()
                await self._commands.connection_pool.disconnect()
                await asyncio.wait(pending, timeout=CLOSE_WAIT)
        for task in self._tasks:  # what ended otherwise than by the cancel is logged, once
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("fan-out: a task ended with %r", task.exception())
        self._tasks = []
        await self._stop_sharing()
        self._publisher.drop_queued()
        await self._reader.aclose()
        await self._commands.aclose()

    async def subscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        skey = stream_key(self.prefix, key)
        self._subs[skey] = (key, subscriber)
        await self._start_reading(
            skey,
            lambda: self._subs.get(skey, (None, None))[1] is subscriber,
            lambda: self._hosts.joined(skey),
        )

    async def open_channel(self, skey: str, channel: Channel) -> None:
        """Read ``skey`` from its newest entry on, handing what comes to ``channel``."""
        self._channels[skey] = channel
        await self._start_reading(skey, lambda: self._channels.get(skey) is channel)

    def close_channel(self, skey: str, channel: Channel) -> None:
        if self._channels.get(skey) is channel:
            del self._channels[skey]
            self._cursors.pop(skey, None)
            self._bad.pop(skey, None)

    async def _start_reading(
        self, skey: str, current: Callable[[], bool], read_from: Callable[[], None] | None = None
    ) -> None:
        """Fetch ``skey``'s cursor (``read_from`` is told at once when it is set)."""
        self._cursors.pop(skey, None)
        if not self.healthy:
            return  # the reader fetches the cursor once it can, then resyncs the subscriber
        self._subscribing.add(skey)
        try:
            newest: Any = await self._commands.xrevrange(skey, count=1)
        except RedisError as exc:
            log.warning("fan-out: cannot start reading %s: %r", skey, exc)
            return
        finally:
            self._subscribing.discard(skey)
        if current():
            self._cursors[skey] = newest[0][0] if newest else b"0-0"
            if read_from is not None:
                read_from()
            await self._wake_reader()

    async def _wake_reader(self) -> None:
        """End the reader's blocking XREAD now (it reads this node's wake-up stream too), so
        a new subscription is read at once rather than after the block (without CLIENT
        UNBLOCK, which needs admin rights)."""
        try:
            async with self._commands.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {b"w": b"1"}, maxlen=1, approximate=False)
                pipe.expire(self._wake_key, WAKE_TTL)
                await pipe.execute()
        except RedisError as exc:
            log.debug("fan-out: could not wake the reader: %r", exc)  # it wakes by itself

    def unsubscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        skey = stream_key(self.prefix, key)
        found = self._subs.get(skey)
        if found is not None and found[1] is subscriber:
            del self._subs[skey]
            self._cursors.pop(skey, None)
            self._bad.pop(skey, None)
            self._hosts.left(skey)

    def solo(self, key: DocKey) -> bool:
        """Whether this node hosts ``key`` and knows of no other host (its updates are not
        published: ``collab.fanout.hosts``)."""
        return self._hosts.solo(stream_key(self.prefix, key))

    def publish(self, key: DocKey, entry: Entry) -> None:
        skey = stream_key(self.prefix, key)
        if self.stats.publish_dropped != self._dropped:
            # A join or an answer may have been lost with what was dropped: announce them all.
            self._dropped = self.stats.publish_dropped
            self._hosts.announce_all([k for k in self._subs if self._hosts.solo(k)])
        if self._hosts.skips(skey, entry):
            self.stats.unshared += 1
            return
        self._put(skey, entry)

    def _put(self, skey: str, entry: Entry) -> None:
        stamped = dataclasses.replace(entry, node=self.node, sent_at=time.time())
        self._publisher.put(skey, stamped)

    # -- reading -----------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        pause = BACKOFF[0]
        while not self._closing:
            try:
                try:
                    await self._read_once()
                except ResponseError as exc:
                    # Asking which key is not a stream is a round trip too: if Redis fails
                    # there, the outer clauses take it as any lost Redis.
                    if not await self._set_aside_bad_keys():
                        # Not a bad key (an ACL, a server refusing): unhealthy, retried.
                        log.warning("fan-out: read refused: %r", exc)
                        self.stats.errors += 1
                        self._reader_ok = False
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, BACKOFF[1])
                    continue
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.stats.errors += 1
                if self._reader_ok:
                    log.warning("fan-out: reading failed, Redis unhealthy: %r", exc)
                self._reader_ok = False
                # Whatever was published meanwhile may be trimmed or gone with a restarted
                # Redis: every cursor is fetched anew, and every subscriber resyncs.
                self._cursors.clear()
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
            except Exception:
                log.exception("fan-out: reader failed")
                self.stats.errors += 1
                await asyncio.sleep(pause)
                pause = min(pause * 2, BACKOFF[1])
            else:
                pause = BACKOFF[0]

    async def _read_once(self) -> None:
        if not self._reader_ok:
            # Say "healthy" before blocking, so subscriptions fetch their cursors at once.
            await self._reader.ping()
            self._mark_reader_ok()
        await self._fetch_missing_cursors()
        now = time.monotonic()
        for skey, until in list(self._bad.items()):
            if until <= now:
                del self._bad[skey]
        streams: dict[Any, Any] = {k: c for k, c in self._cursors.items() if k not in self._bad}
        if self._wake_key not in self._bad:
            streams[self._wake_key] = "$"  # only what a subscription adds while this blocks
        if not streams:  # every key set aside: nothing to wait on but the time
            await asyncio.sleep(self.block_ms / 1000)
            return
        # RESP2: [[key, [(id, {field: value}), ...]], ...], or None when the block timed out.
        reply: Any = await self._reader.xread(streams, count=READ_COUNT, block=self.block_ms)
        self._mark_reader_ok()
        for raw_key, entries in reply or []:
            self._deliver(raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key), entries)

    async def _fetch_missing_cursors(self) -> None:
        missing = [
            skey
            for skey in [*self._subs, *self._channels]
            if skey not in self._cursors and skey not in self._bad and skey not in self._subscribing
        ]
        if not missing:
            return
        async with self._reader.pipeline(transaction=False) as pipe:
            for skey in missing:
                pipe.xrevrange(skey, count=1)
            results = await pipe.execute(raise_on_error=False)
        self._mark_reader_ok()
        for skey, result in zip(missing, results, strict=True):
            if skey not in self._subs and skey not in self._channels:
                continue
            if isinstance(result, Exception):
                self._set_bad(skey)
                continue
            self._cursors[skey] = result[0][0] if result else b"0-0"
            # The cursor is later than the load: look in the store (a channel: read it again).
            self._resync_key(skey)
            if skey in self._subs:
                self._hosts.announce(skey)  # a join or answer may have gone unread meanwhile

    def _mark_reader_ok(self) -> None:
        if not self._reader_ok:
            log.info("fan-out: reading from Redis")
        self._reader_ok = True

    def _deliver(self, skey: str, entries: list[tuple[bytes, object]]) -> None:
        channel = self._channels.get(skey)
        if channel is not None:
            if skey in self._cursors and entries:
                after, self._cursors[skey] = self._cursors[skey], entries[-1][0]
                channel.deliver(entries, after)  # decodes, counts and catches on its own
            return
        found = self._subs.get(skey)
        if found is None or skey not in self._cursors:
            return  # unsubscribed while the read was in flight
        subscriber, own, hosts = found[1], self._own, self._hosts
        for entry_id, fields in entries:
            self._cursors[skey] = entry_id
            if isinstance(fields, dict) and fields.get(b"node") == own:
                continue  # this node's: dropped before decoding (with room affinity, all are)
            try:
                entry = decode_entry(fields, self.max_update)
            except BadEntry as exc:
                self.stats.bad_entries += 1
                log.warning("fan-out: skipped an entry of %s: %s", skey, exc)
                self._resync(subscriber)  # it may have been an update we now lack
                hosts.heard(skey, "")  # someone else writes here: shared
                continue
            if entry.kind != UPDATE or hosts.solo(skey):
                if hosts.heard(skey, entry.kind):
                    continue  # a join: answered
                if entry.kind == HOST:
                    self._resync(subscriber)  # its commits while it was solo are stored
                    continue
            self.stats.received += 1
            try:  # inline, not ``guarded``: once per entry, on the hot path
                subscriber.on_entry(entry)
            except Exception:
                self.stats.errors += 1
                log.exception("fan-out: delivering to %s failed", skey)

    def _resync(self, subscriber: Subscriber) -> None:
        guarded(self.stats, "resync", subscriber.on_resync)

    def _resync_key(self, skey: str) -> None:
        found, channel = self._subs.get(skey), self._channels.get(skey)
        if found is not None:
            self._resync(found[1])
        elif channel is not None:
            channel.resync()

    async def _set_aside_bad_keys(self) -> bool:
        """After a refused XREAD: leave out every key that is not a stream; whether any was.
        Only a key Redis names another type is one: a refused ``TYPE`` (an ACL, BUSY,
        MASTERDOWN...) says nothing of the key, and the read is then retried whole."""
        keys = [k for k in [*self._cursors, self._wake_key] if k not in self._bad]
        async with self._reader.pipeline(transaction=False) as pipe:
            for skey in keys:
                pipe.type(skey)
            kinds = await pipe.execute(raise_on_error=False)
        if any(isinstance(kind, Exception) for kind in kinds):
            return False
        found = False
        for skey, kind in zip(keys, kinds, strict=True):
            if kind not in (b"stream", b"none", "stream", "none"):
                self._set_bad(skey)
                found = True
        return found

    def _set_bad(self, skey: str) -> None:
        self.stats.bad_keys += 1
        self._bad[skey] = time.monotonic() + BAD_KEY_PAUSE
        log.warning("fan-out: %s is not a readable stream; its doc polls the store", skey)
        self._hosts.left(skey)  # shared: unread, it might hold another node's join
        self._resync_key(skey)
