"""Disabled users lose their open sockets, on every node, whoever disabled them.

``PATCH /api/v1/users/{id}`` closes the user's sockets on the node that answers it, at once;
``collab user disable`` runs in another process (it writes the MetaStore directly), and other
nodes hear of neither. So every ``interval`` seconds each node asks its MetaStore which of the
users behind its open sockets (docs, chat, live streams; every room) are disabled now, and
closes their sockets 4401, as a revoked credential is closed (``RoomRegistry.close_matching``).

A round costs one query per ``500`` distinct users holding sockets here (``get_disabled_users``
batches them), nothing when no socket is open; a failed round is logged and the next one tries
again. One task per node.
"""

from __future__ import annotations

import logging

from collab.meta import MetaStore
from collab.sync.periodic import Periodic
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.disabled")

CLOSE_CODE = 4401  # the user's credentials are refused from now on: final, as for a logout
REASON = "user disabled"


class DisabledUsers:
    def __init__(self, registry: RoomRegistry, meta: MetaStore, *, interval: float) -> None:
        self.registry = registry
        self.meta = meta
        self.interval = interval
        self.rounds = 0  # rechecks done (tests, logs)
        self._periodic = Periodic(
            interval, self.recheck, "checking for disabled users failed (tried again next round)"
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    def open_users(self) -> set[str]:
        """The users behind this node's open sockets: docs, chat and live streams."""
        users = {feed.user_id for feed in self.registry.feeds}
        for live in self.registry.loaded_docs():
            for peer in list(live.peers.values()):
                if peer.principal is not None:
                    users.add(peer.principal.user_id)
        return users

    async def recheck(self) -> int:
        """Close every open socket of a user the MetaStore says is disabled; how many."""
        users = self.open_users()
        disabled = await self.meta.get_disabled_users(users) if users else set()
        self.rounds += 1
        if not disabled:
            return 0
        closed = self.registry.close_matching(
            CLOSE_CODE,
            REASON,
            lambda peer: peer.principal is not None and peer.principal.user_id in disabled,
        )
        log.info("closed %d sockets of %d disabled users", closed, len(disabled))
        return closed
