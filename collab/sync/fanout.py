"""The seam for cross-node fan-out (the scale-out issue fills it; nothing calls it yet).

When several ``collab serve`` nodes share a room, each committed update must reach the live
docs of the other nodes, which apply it as a remote-origin update and relay it to their own
peers. ``Fanout`` is that channel, a Protocol of three methods; ``LocalFanout`` is its
in-process twin (several registries in one process, as tests will run them), which a Redis
implementation will sit beside under one contract suite (tests/sync/test_fanout.py).

Where it plugs in: ``LiveDoc`` publishes in ``_on_committed`` (after the commit, like a relay)
and receives through the same scan/check/apply path as a peer update, with its own origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from collab.names import DocKey

Receiver = Callable[[bytes], None]


class Fanout(Protocol):
    def subscribe(self, key: DocKey, node: str, receive: Receiver) -> None:
        """Deliver updates other nodes publish for ``key`` to ``receive`` (node: who we are)."""

    def unsubscribe(self, key: DocKey, node: str) -> None:
        """Stop delivering ``key`` to ``node`` (the doc was evicted there)."""

    async def publish(self, key: DocKey, node: str, update: bytes) -> None:
        """Send a committed update to every other node subscribed to ``key``."""


class LocalFanout:
    """Every subscriber in this process, in subscription order; never back to the publisher."""

    def __init__(self) -> None:
        self._subscribers: dict[DocKey, dict[str, Receiver]] = {}

    def subscribe(self, key: DocKey, node: str, receive: Receiver) -> None:
        self._subscribers.setdefault(key, {})[node] = receive

    def unsubscribe(self, key: DocKey, node: str) -> None:
        nodes = self._subscribers.get(key)
        if nodes is not None:
            nodes.pop(node, None)
            if not nodes:
                del self._subscribers[key]

    async def publish(self, key: DocKey, node: str, update: bytes) -> None:
        for other, receive in list(self._subscribers.get(key, {}).items()):
            if other != node:
                receive(update)
