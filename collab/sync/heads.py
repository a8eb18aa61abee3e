"""The periodic head check: every open doc compares itself with the store now and then.

The fan-out cannot deliver what was never published: a node that commits an update and dies
before its publish leaves the others one update short until someone reads the store. So every
loaded doc with someone connected runs ``LiveDoc``'s catch-up read every ``head_poll_interval``
seconds, and every ``head_poll_degraded`` seconds while the channel cannot vouch for it (Redis
unreachable, or that doc's key unreadable): then these reads are how updates cross nodes, and
Redis being down costs latency, never data. Idle docs are skipped: a joiner catches up anyway.
One task per node, reads one at a time (a round over many docs takes as long as it takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from collab import logs
from collab.errors import CollabError, must_propagate
from collab.fanout import Fanout
from collab.sync.hooks import SyncHooks
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.heads")


class HeadPoller:
    def __init__(
        self,
        registry: RoomRegistry,
        fanout: Fanout,
        hooks: SyncHooks,
        *,
        interval: float,
        degraded_interval: float,
    ) -> None:
        self.registry = registry
        self.fanout = fanout
        self.hooks = hooks
        self.interval = interval
        self.degraded_interval = degraded_interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), context=logs.detached())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def tick(self) -> float:
        """How often turns are looked at: half the shorter interval, so a doc is checked
        within its interval (a tick as long as the interval would make it two)."""
        return min(self.interval, self.degraded_interval) / 2

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            await self.poll_due()

    async def poll_due(self) -> int:
        """Check every doc whose turn it is (its interval, less a tick); how many were."""
        checked, slack = 0, self.tick
        for live in self.registry.loaded_docs():
            nodes = live.nodes
            if nodes is None or not live.peers or live.failed is not None:
                continue
            follower = nodes.follower
            every = self.degraded_interval if self.fanout.degraded(live.key) else self.interval
            if time.monotonic() - follower.last_checked < every - slack:
                continue
            try:
                await nodes.catch_up()
            except CollabError:
                continue  # deleted or failed: its sockets are closed already
            except BaseException as exc:
                if must_propagate(exc) or isinstance(exc, asyncio.CancelledError):
                    raise
                log.warning(
                    "head check of %s failed: %r", live.key, exc, extra=logs.doc_fields(live.key)
                )
                follower.last_checked = time.monotonic()  # not again at once: the next turn
                continue
            checked += 1
            self.hooks.head_polled()
        return checked
