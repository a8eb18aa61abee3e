"""Revoked credentials and deleted rooms across nodes: every node closes the sockets they end.

The node whose API revokes a session or a token, disables a user, removes a bot or deletes a
room closes its own sockets at once and announces it (``RoomRegistry.revoke``: an ``access``
notice names the user, or for a room token the room; ``RoomRegistry.close_room``: a
``room_gone`` notice names the room). Every other node's ``AccessFollower`` re-reads, from its
MetaStore, the credentials behind the sockets the notice names, and closes those that ended
as the first node did: 4401 (``user disabled``, ``session revoked``, ``token revoked``); a
room the store no longer has closes its sockets 4404 and its watchers reload their lists. A
notice carries no credential and is never trusted to close a socket on its own.

A notice can be lost (Redis down or restarted, a node dying between its write and its
publish), so every ``interval`` seconds each node also rechecks the credentials behind each of
its open sockets (one query for the users disabled, one per 500 sessions, one per user on an
API token, one per room token), and at once when the channel says notices may have been
missed; in the same round it checks that the rooms the live streams here watch still exist
(one query per 500: a room deleted while its notice was lost leaves their lists). (A deleted
room's docs are also found gone by ``collab.sync.heads``.) One task per node; reads one at
a time; a failed round is logged, and the next one tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from collab.auth.policy import effective_role
from collab.fanout import ACCESS, ROOM_GONE, Notice
from collab.meta import MetaStore
from collab.sync.access import follow_role
from collab.sync.livedoc import LiveDoc
from collab.sync.notices import NoticeFollower, NoticeSource
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.revoked")

CLOSE_CODE = 4401  # as the node that revoked it closes them


class AccessFollower(NoticeFollower[tuple[str, str, str]]):
    """Follows ``access`` and ``room_gone`` notices: keys (kind, room, user)."""

    kinds = frozenset((ACCESS, ROOM_GONE))
    failed = "following a revocation failed (tried again next round)"

    def __init__(
        self, registry: RoomRegistry, meta: MetaStore, notices: NoticeSource, *, interval: float
    ) -> None:
        super().__init__(notices, interval=interval)
        self.registry = registry
        self.meta = meta

    def key_of(self, notice: Notice) -> tuple[str, str, str]:
        return (notice.kind, notice.room, notice.user)

    async def follow(self, key: tuple[str, str, str]) -> None:
        kind, room, user = key
        if kind == ROOM_GONE:
            await self.room_gone(room)
        else:
            await self.recheck(self.named(room, user))

    async def recheck_all(self) -> None:
        await self.recheck(self.open_peers())
        await self.recheck_rooms()

    async def recheck_rooms(self) -> int:
        """The rooms the live streams here watch that the store no longer has (deleted while
        the notice was lost): their watchers reload their lists, their docs' sockets close
        4404 (as ``room_gone``). One query per 500 rooms; how many were gone."""
        watched = self.registry.feeds.watched_rooms()
        if not watched:
            return 0
        gone = watched - await self.meta.existing_rooms(watched)
        for room in sorted(gone):
            self.registry.close_room(room, 4404, "room deleted", announce=False)
        if gone:
            log.info("%d rooms watched here were deleted on another node", len(gone))
        return len(gone)

    def open_peers(self) -> list[Peer]:
        """Every open socket here with a principal: docs, chat and live streams."""
        peers = [feed.peer for feed in self.registry.feeds]
        for live in self.registry.loaded_docs():
            peers.extend(live.peers.values())
        return [peer for peer in peers if peer.principal is not None and not peer.closing]

    def named(self, room: str, user: str) -> list[Peer]:
        """The sockets a notice names: ``user``'s, or (no user) the room tokens of ``room``."""
        found = []
        for peer in self.open_peers():
            principal = peer.principal
            assert principal is not None
            if user and principal.user_id == user:
                found.append(peer)
            elif not user and principal.jti is not None and principal.room_scope == room:
                found.append(peer)
        return found

    async def room_gone(self, room: str) -> None:
        """Another node deleted ``room``: if the store agrees, close its sockets here 4404."""
        if await self.meta.get_room(room) is None:
            self.registry.close_room(room, 4404, "room deleted", announce=False)

    async def recheck(self, peers: Iterable[Peer]) -> int:
        """Close each of ``peers`` whose credential the MetaStore says ended; how many."""
        peers = list(peers)
        self.registry.access_changes += 1  # and the sockets joining meanwhile check their own
        ended = await ended_credentials(self.meta, peers)
        for peer, reason in ended:
            peer.close(CLOSE_CODE, reason)
        if ended:
            log.info("closed %d sockets whose credentials ended on another node", len(ended))
        return len(ended)


async def ended_credentials(meta: MetaStore, peers: list[Peer]) -> list[tuple[Peer, str]]:
    """Each peer whose credential ended, with the reason the revoking node gave."""
    principals = [peer.principal for peer in peers if peer.principal is not None]
    disabled = await meta.get_disabled_users({p.user_id for p in principals})
    sessions = {p.session_id for p in principals if p.session_id is not None}
    live_sessions = await meta.live_sessions(sessions) if sessions else set()
    revoked_tokens: set[str] = set()
    for user in sorted({p.user_id for p in principals if p.token_id is not None}):
        tokens = {t.id: t.revoked for t in await meta.list_api_tokens(user)}
        revoked_tokens.update(
            p.token_id
            for p in principals
            if p.user_id == user and p.token_id is not None and tokens.get(p.token_id, True)
        )
    revoked_jtis: set[tuple[str, str]] = set()
    for room, jti in sorted({(p.room_scope or "", p.jti) for p in principals if p.jti}):
        if await meta.room_token_revoked(room, jti):
            revoked_jtis.add((room, jti))
    ended = []
    for peer in peers:
        p = peer.principal
        if p is None:
            continue
        if p.user_id in disabled:
            ended.append((peer, "user disabled"))
        elif p.session_id is not None and p.session_id not in live_sessions:
            ended.append((peer, "session revoked"))
        elif p.token_id is not None and p.token_id in revoked_tokens:
            ended.append((peer, "token revoked"))
        elif p.jti is not None and (p.room_scope or "", p.jti) in revoked_jtis:
            ended.append((peer, "token revoked"))
    return ended


async def recheck_joined(meta: MetaStore, live: LiveDoc, peer: Peer) -> None:
    """A socket that just joined ``live`` while access changed on open sockets (it was not
    among them yet: ``RoomRegistry.access_changes``): apply what the MetaStore says now, as
    the change did to the others (its credential ended: 4401; the room deleted: 4404; its
    role changed or the member removed: ``follow_role``)."""
    principal = peer.principal
    assert principal is not None
    for _, reason in await ended_credentials(meta, [peer]):
        peer.close(CLOSE_CODE, reason)
        return
    room = live.key.room
    if await meta.get_room(room) is None:
        peer.close(4404, "room deleted")
        return
    member = await meta.get_member(room, principal.user_id)
    role = member.role if member is not None else None
    if effective_role(principal, role) != peer.role:
        follow_role(live, peer, role)
