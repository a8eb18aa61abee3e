"""Dropping a dead node's awareness: its users vanish from every other node within seconds.

Each node beats a heartbeat in the channel (``Fanout.nodes_alive``). Every ``interval``
seconds this node asks which of the nodes whose clients it shows are still beating; for each
one that is not, every loaded doc drops that node's states and tells its sockets (an awareness
update with those clients removed), and the channel forgets them (so a node loading the doc
later does not show them either). While the channel cannot say (Redis down), nothing is
dropped. One task per node.
"""

from __future__ import annotations

import logging

from collab.fanout import Fanout
from collab.sync.periodic import Periodic
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.presence")

SWEEP_INTERVAL = 2.0  # seconds; with the heartbeat's 8 s, a dead node's users go within ~10 s


class PresenceSweeper:
    def __init__(
        self, registry: RoomRegistry, fanout: Fanout, *, interval: float = SWEEP_INTERVAL
    ) -> None:
        self.registry = registry
        self.fanout = fanout
        self.interval = interval
        self.dropped = 0  # states of dead nodes dropped so far (tests, logs)
        self._periodic = Periodic(
            interval, self.sweep, "sweeping dead nodes' awareness failed (tried again)"
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def sweep(self) -> int:
        """Drop the states of every node that stopped beating; how many were dropped."""
        shown = [
            (live.key, live.nodes.presence)
            for live in self.registry.loaded_docs()
            if live.nodes is not None
        ]
        nodes: set[str] = set()
        for _, shared in shown:
            nodes |= shared.live.presence.remote_nodes()
        if not nodes:
            return 0
        alive = await self.fanout.nodes_alive(nodes)
        if alive is None:
            return 0  # the channel cannot say: keep what is shown
        dead, dropped = nodes - alive, 0
        if not dead:
            return 0
        log.info("nodes stopped beating, dropping their awareness: %s", sorted(dead))
        for key, shared in shown:
            for node, clients in shared.drop_nodes(dead).items():
                dropped += len(clients)
                await self.fanout.forget_awareness(key, node, clients)
        self.dropped += dropped
        return dropped
