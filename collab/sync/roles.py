"""Role changes across nodes: a member's new role reaches the sockets every node holds.

The node whose API changes a membership writes it to the MetaStore, applies it to its own
sockets at once and announces it (``RoomRegistry.apply_member_role``: a ``role`` notice names
the room and the user, never the role). Every other node's ``RoleFollower`` re-reads that
member's role from its MetaStore, the record, and applies it to its own sockets the same way
(``collab.sync.access.follow_role``): a downgrade refuses later writes (opted in: message 103),
an upgrade pulls the edits refused before, a removal closes 4403.

A notice can be lost (Redis down or restarted, a node dying between its write and its
publish), so every ``interval`` seconds each node also re-reads the role behind each of its
open doc sockets and applies those that changed, and the rooms of each user with a live stream
(``/ws/_me``) here, whose streams reload a list that no longer matches; and at once when the
channel says notices may have been missed. One task per node; reads one at a time; a failed
read is logged, and the next round tries again.
"""

from __future__ import annotations

import logging

from collab.auth.policy import effective_role
from collab.fanout import ROLE, Notice
from collab.meta import MetaStore
from collab.sync.notices import NoticeFollower, NoticeSource
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.roles")


class RoleFollower(NoticeFollower[tuple[str, str]]):
    """Follows ``role`` notices: keys (room, user)."""

    kinds = frozenset((ROLE,))
    failed = "following role changes failed (tried again next round)"

    def __init__(
        self, registry: RoomRegistry, meta: MetaStore, fanout: NoticeSource, *, interval: float
    ) -> None:
        super().__init__(fanout, interval=interval)
        self.registry = registry
        self.meta = meta

    def key_of(self, notice: Notice) -> tuple[str, str]:
        return (notice.room, notice.user)

    async def follow(self, key: tuple[str, str]) -> None:
        """Another node changed a membership (room, user): apply what the store says."""
        await self.follow_member(*key)

    async def recheck_all(self) -> None:
        await self.recheck()
        await self.recheck_streams()

    async def follow_member(self, room: str, user: str) -> None:
        """Another node changed ``user``'s membership of ``room``: apply what the store says."""
        member = await self.meta.get_member(room, user)
        role = member.role if member is not None else None
        self.registry.apply_member_role(room, user, role, announce=False)

    async def recheck(self) -> int:
        """Re-read the role behind every open doc socket; apply the ones that changed. Returns
        how many (room, user) pairs were read."""
        pairs: dict[tuple[str, str], None] = {}
        for live in self.registry.loaded_docs():
            for peer in list(live.peers.values()):
                if peer.principal is not None:
                    pairs[(live.key.room, peer.principal.user_id)] = None
        for room, user in pairs:
            member = await self.meta.get_member(room, user)
            role = member.role if member is not None else None
            changed = any(
                effective_role(peer.principal, role) != peer.role
                for _, peer in self.registry.peers_of_room(room)
                if peer.principal is not None and peer.principal.user_id == user
            )
            if changed:
                log.info("a role change in %s reached this node by recheck", room)
                self.registry.apply_member_role(room, user, role, announce=False)
        return len(pairs)

    async def recheck_streams(self) -> int:
        """Re-read the rooms and DMs of every user with a live stream here; the streams whose
        last list differs (a membership or role changed) reload it. How many users were read.
        """
        feeds = self.registry.feeds
        users = sorted(feeds.users())
        for user in users:
            rooms = await self.meta.list_rooms_for(user)
            dms = await self.meta.list_dms_for(user)
            now = {room.id: role.name for room, role in rooms}
            now.update((room.id, "editor") for room in dms)  # as the stream lists a DM
            if any(listed != now for listed in feeds.listed(user)):
                log.info("a membership change of a live stream's user reached it by recheck")
                feeds.user_changed(user)
        return len(users)
