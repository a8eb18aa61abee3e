"""The in-process twin of the fan-out: several nodes (registries) in one process, one bus.

Tests run two or three ``RoomRegistry`` on one ``MemoryStore`` with a ``LocalFanout`` each on a
shared ``LocalBus``: the whole multi-node path without a socket. Delivery is asynchronous
(``call_soon``, in publication order), like a real channel, and the bus can be taken down and
brought back (``set_up``): while down, publishes are dropped; coming back, every subscriber is
told to resync, as the Redis fan-out does after a reconnect. Notices and shared awareness
follow the same rules as over Redis (a client id stays its principal's; ``alive`` holds the
started nodes, so a test may drop one from it to play a dead node). Rate limits: one
``RateLimiter`` per kind on the bus while it is up, each node's own while it is down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from collab.fanout.base import (
    AwarenessRecord,
    AwarenessWatcher,
    Entry,
    FanoutStats,
    Notice,
    NoticeWatcher,
    Subscriber,
)
from collab.names import DocKey
from collab.ratelimit import RateLimiter


class LocalBus:
    def __init__(self) -> None:
        self.subscribers: dict[DocKey, dict[str, Subscriber]] = {}
        self.up = True
        self.notice_watchers: dict[str, NoticeWatcher] = {}
        self.states: dict[DocKey, dict[int, AwarenessRecord]] = {}  # the shared hash
        self.aware: dict[DocKey, dict[str, AwarenessWatcher]] = {}
        self.alive: set[str] = set()
        self.limiters: dict[str, RateLimiter] = {}  # the shared buckets, by kind
        self.here: dict[str, dict[str, bytes]] = {}  # room -> node -> presence summary
        self.here_marks: set[str] = set()

    def set_up(self, up: bool) -> None:
        was, self.up = self.up, up
        if up and not was:
            for nodes in list(self.subscribers.values()):
                for subscriber in list(nodes.values()):
                    subscriber.on_resync()
            for watcher in list(self.notice_watchers.values()):
                watcher.on_notice_resync()
            for watchers in list(self.aware.values()):
                for aware in list(watchers.values()):
                    aware.on_awareness_resync()


class LocalFanout:
    def __init__(self, bus: LocalBus | None = None, node: str = "local") -> None:
        self.bus = bus if bus is not None else LocalBus()
        self.node = node
        self.stats = FanoutStats()

    @property
    def healthy(self) -> bool:
        return self.bus.up

    def degraded(self, key: DocKey) -> bool:
        return not self.bus.up

    async def start(self) -> None:
        self.bus.alive.add(self.node)

    async def close(self) -> None:
        for nodes in self.bus.subscribers.values():
            nodes.pop(self.node, None)
        for watchers in self.bus.aware.values():
            watchers.pop(self.node, None)
        self.bus.notice_watchers.pop(self.node, None)
        self.bus.alive.discard(self.node)

    async def subscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        self.bus.subscribers.setdefault(key, {})[self.node] = subscriber

    def unsubscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        nodes = self.bus.subscribers.get(key)
        if nodes is not None and nodes.get(self.node) is subscriber:
            del nodes[self.node]
            if not nodes:
                del self.bus.subscribers[key]

    def publish(self, key: DocKey, entry: Entry) -> None:
        if not self.bus.up:
            self.stats.publish_dropped += 1
            return
        self.stats.published += 1
        stamped = dataclasses.replace(entry, node=self.node, sent_at=time.time())
        loop = asyncio.get_running_loop()
        for node, subscriber in list(self.bus.subscribers.get(key, {}).items()):
            if node != self.node:
                loop.call_soon(self._deliver, key, node, subscriber, stamped)

    def _deliver(self, key: DocKey, node: str, subscriber: Subscriber, entry: Entry) -> None:
        # Still subscribed (not evicted meanwhile)? Then it counts as received.
        if self.bus.subscribers.get(key, {}).get(node) is subscriber:
            subscriber.on_entry(entry)

    # -- notices and awareness ---------------------------------------------------------------

    async def watch_notices(self, watcher: NoticeWatcher) -> None:
        self.bus.notice_watchers[self.node] = watcher

    def notify(self, notice: Notice) -> None:
        if not self.bus.up:
            self.stats.publish_dropped += 1
            return
        self.stats.published += 1
        stamped = dataclasses.replace(notice, node=self.node, sent_at=time.time())
        loop = asyncio.get_running_loop()
        for node, watcher in list(self.bus.notice_watchers.items()):
            if node != self.node:
                loop.call_soon(watcher.on_notice, stamped)

    async def follow_awareness(
        self, key: DocKey, watcher: AwarenessWatcher
    ) -> list[AwarenessRecord]:
        self.bus.aware.setdefault(key, {})[self.node] = watcher
        return await self.awareness_states(key)

    async def awareness_states(self, key: DocKey) -> list[AwarenessRecord]:
        if not self.bus.up:
            return []
        return [r for r in self.bus.states.get(key, {}).values() if r.node != self.node]

    def unfollow_awareness(self, key: DocKey, watcher: AwarenessWatcher) -> None:
        watchers = self.bus.aware.get(key)
        if watchers is not None and watchers.get(self.node) is watcher:
            del watchers[self.node]
            if not watchers:
                del self.bus.aware[key]

    def publish_awareness(
        self, key: DocKey, records: list[AwarenessRecord], watcher: AwarenessWatcher
    ) -> None:
        if not self.bus.up:
            self.stats.publish_dropped += len(records)
            return
        loop = asyncio.get_running_loop()
        states = self.bus.states.setdefault(key, {})
        expires = time.time() + 3600.0
        for record in records:
            stamped = dataclasses.replace(record, node=self.node, expires=expires)
            current = states.get(record.client)
            if current is not None and current.principal != record.principal:
                self.stats.awareness_refused += 1
                loop.call_soon(watcher.on_awareness_refused, stamped)
                continue
            self.stats.awareness_published += 1
            if record.state is None and current is not None and current.node != self.node:
                continue  # set through another node since (a tab that moved): not ours
            if record.state is None:
                states.pop(record.client, None)
            else:
                states[record.client] = stamped
            for node, other in list(self.bus.aware.get(key, {}).items()):
                if node != self.node:
                    loop.call_soon(other.on_awareness, stamped)

    async def nodes_alive(self, nodes: set[str]) -> set[str] | None:
        return nodes & self.bus.alive if self.bus.up else None

    async def put_here(self, summaries: dict[str, bytes | None]) -> bool:
        if not self.bus.up:
            return False
        for room, summary in summaries.items():
            nodes = self.bus.here.setdefault(room, {})
            if summary is None:
                nodes.pop(self.node, None)
            else:
                nodes[self.node] = summary
            if not nodes:
                del self.bus.here[room]
        return True

    async def read_here(self, rooms: list[str]) -> dict[str, dict[str, bytes]] | None:
        if not self.bus.up:
            return None
        found = {room: dict(self.bus.here.get(room, {})) for room in rooms}
        for nodes in found.values():
            nodes.pop(self.node, None)
        return {room: nodes for room, nodes in found.items() if nodes}

    async def mark_here(self) -> bool | None:
        if not self.bus.up:
            return None
        missing = self.node not in self.bus.here_marks
        self.bus.here_marks.add(self.node)
        return missing

    async def drop_here(self, node: str, rooms: list[str]) -> None:
        for room in rooms:
            self.bus.here.get(room, {}).pop(node, None)
        self.bus.here_marks.discard(node)

    async def forget_awareness(self, key: DocKey, node: str, clients: list[int]) -> None:
        states = self.bus.states.get(key, {})
        for client in clients:
            if client in states and states[client].node == node:
                del states[client]

    def limiter(self, kind: str, local: RateLimiter) -> LocalLimiter:
        return LocalLimiter(self, kind, local)


class LocalLimiter:
    """The bus's bucket of ``kind`` while the bus is up, the node's own (``local``) while not."""

    def __init__(self, fanout: LocalFanout, kind: str, local: RateLimiter) -> None:
        self.fanout = fanout
        self.kind = kind
        self.local = local
        self.rate = local.rate
        self.burst = local.burst

    def _limiter(self) -> RateLimiter:
        stats, bus = self.fanout.stats, self.fanout.bus
        if not bus.up:
            stats.rate_fallbacks += 1
            return self.local
        stats.rate_checks += 1
        shared = bus.limiters.get(self.kind)
        if shared is None:
            shared = bus.limiters[self.kind] = RateLimiter(self.rate, self.burst)
        return shared

    async def take(self, key: str) -> float:
        return self._limiter().acquire(key)

    async def peek(self, key: str) -> float:
        return self._limiter().retry_after(key)
