"""What a node runs to follow the other nodes' changes through the notice channel.

With a fan-out, each node's ``NoticeRouter`` takes the notices and hands them to the role
follower (``collab.sync.roles``), the access follower (``collab.sync.revoked``: revoked
credentials, deleted rooms) and the live streams (``collab.sync.feeds``: counts); the
streams' presence is shared beside them (``collab.sync.feedhere``). A layer above adds its own
followers on the same router (``add``: ``collab.chat.readnodes``, private read markers).
"""

from __future__ import annotations

from typing import Any

from collab.fanout import Fanout
from collab.meta import MetaStore
from collab.sync.feedhere import SharedHere
from collab.sync.notices import NoticeFollower, NoticeRouter
from collab.sync.registry import RoomRegistry
from collab.sync.revoked import AccessFollower
from collab.sync.roles import RoleFollower


class NodeFollowers:
    def __init__(
        self, registry: RoomRegistry, meta: MetaStore, fanout: Fanout, *, interval: float
    ) -> None:
        """``interval``: seconds between the backstop rechecks of roles and credentials."""
        self.registry = registry
        self.router = NoticeRouter(fanout)
        self.roles = RoleFollower(registry, meta, self.router, interval=interval)
        self.access = AccessFollower(registry, meta, self.router, interval=interval)
        self.here = SharedHere(registry, fanout)
        self.others: list[NoticeFollower[Any]] = []  # a higher layer's (``add``)

    def add(self, follower: NoticeFollower[Any]) -> None:
        """Start and stop ``follower`` (on ``router``) with the others."""
        self.others.append(follower)

    async def start(self) -> None:
        await self.roles.start()
        await self.access.start()
        for follower in self.others:
            await follower.start()
        await self.router.watch_notices(self.registry.feeds)
        self.here.start()

    async def stop(self) -> None:
        await self.here.stop()
        for follower in reversed(self.others):
            await follower.stop()
        await self.access.stop()
        await self.roles.stop()
