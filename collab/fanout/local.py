"""The in-process twin of the fan-out: several nodes (registries) in one process, one bus.

Tests run two or three ``RoomRegistry`` on one ``MemoryStore`` with a ``LocalFanout`` each on a
shared ``LocalBus``: the whole multi-node path without a socket. Delivery is asynchronous
(``call_soon``, in publication order), like a real channel, and the bus can be taken down and
brought back (``set_up``): while down, publishes are dropped; coming back, every subscriber is
told to resync, as the Redis fan-out does after a reconnect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

from collab.fanout.base import Entry, FanoutStats, Subscriber
from collab.names import DocKey


class LocalBus:
    def __init__(self) -> None:
        self.subscribers: dict[DocKey, dict[str, Subscriber]] = {}
        self.up = True

    def set_up(self, up: bool) -> None:
        was, self.up = self.up, up
        if up and not was:
            for nodes in list(self.subscribers.values()):
                for subscriber in list(nodes.values()):
                    subscriber.on_resync()


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
        return None

    async def close(self) -> None:
        for nodes in self.bus.subscribers.values():
            nodes.pop(self.node, None)

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
