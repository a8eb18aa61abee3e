"""What a node runs to follow the other nodes' changes through the notice channel.

With a fan-out, each node's ``NoticeRouter`` takes the notices and hands them to the role
follower (``collab.sync.roles``), the access follower (``collab.sync.revoked``: revoked
credentials, deleted rooms) and the live streams (``collab.sync.feeds``: counts); the
streams' presence is shared beside them (``collab.sync.feedhere``).
"""

from __future__ import annotations

from collab.fanout import Fanout
from collab.meta import MetaStore
from collab.sync.feedhere import SharedHere
from collab.sync.notices import NoticeRouter
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

    async def start(self) -> None:
        await self.roles.start()
        await self.access.start()
        await self.router.watch_notices(self.registry.feeds)
        self.here.start()

    async def stop(self) -> None:
        await self.here.stop()
        await self.access.stop()
        await self.roles.stop()
