"""Private read markers across nodes: a user's switch reaches the chat docs every node holds.

The node whose API changes ``private_read_markers`` writes it to the MetaStore, removes the
user's entry from (or puts it back into) the ``reads`` of the chat docs it has loaded, and
announces it first (``ChatService.show_read_markers``: a ``reads`` notice names the user, never
the setting). Every other node's ``ReadsFollower`` re-reads the setting from its MetaStore, the
record, and does the same to the chat docs it has loaded (a doc loaded on both nodes gets the
change twice: the second is a no-op, committing nothing). A doc loaded later shows only the
public markers from its load (``collab.chat.window``).

A notice can be lost (Redis down or restarted, a node dying between its write and its
publish), so every ``interval`` seconds each node also rechecks each chat doc it has loaded:
an entry of a user whose markers are private is removed, and a public marker with no entry at
all is put back (an entry present is left as it is: only a marker's own write moves it); and at
once when the channel says notices may have been missed. A round reads the markers of all those
rooms and who of their users is private in two queries (per 500 rooms), compares them with each
doc, and only for a doc that looks wrong reads its room's again, on the room's lock for its
markers, before changing it (a marker written meanwhile is seen there). Two reads per doc, as it
first was, cost a node with 200 chat docs loaded 400 queries and ~200 ms of PostgreSQL round
trips every 5 s (the default interval); the two queries take ~5 ms. One task per node; a failed
round is logged, and the next one tries again.
"""

from __future__ import annotations

import logging

from collab.chat.schema import read_users
from collab.chat.service import ChatService
from collab.chat.window import CHAT, chat_key
from collab.fanout import READS, Fanout, Notice
from collab.meta import ReadMarker
from collab.settings import Settings
from collab.sync.followers import NodeFollowers
from collab.sync.notices import NoticeFollower, NoticeSource
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.chat.readnodes")


def node_followers(
    settings: Settings, registry: RoomRegistry, chat: ChatService, fanout: Fanout | None
) -> NodeFollowers | None:
    """With a fanout: what follows the other nodes' changes (``collab.sync.followers``), this
    module's follower among them; ``chat`` announces its users' switches through them."""
    if fanout is None:
        return None
    interval = settings.role_recheck_interval
    followers = NodeFollowers(registry, chat.meta, fanout, interval=interval)
    followers.add(ReadsFollower(chat, followers.router, interval=interval))
    chat.announce = followers.router.notify
    return followers


class ReadsFollower(NoticeFollower[str]):
    """Follows ``reads`` notices: keys user ids."""

    kinds = frozenset((READS,))
    failed = "following read marker settings failed (tried again next round)"

    def __init__(self, chat: ChatService, notices: NoticeSource, *, interval: float) -> None:
        super().__init__(notices, interval=interval)
        self.chat = chat

    def key_of(self, notice: Notice) -> str:
        return notice.user

    async def follow(self, key: str) -> None:
        """Another node switched ``key``'s markers: apply what the store says now."""
        user = await self.chat.meta.get_user(key)
        if user is not None:
            public = not user.private_read_markers
            await self.chat.show_read_markers(user.id, public=public, announce=False)

    async def recheck_all(self) -> None:
        docs = {
            live.key.room: live for live in self.chat.registry.loaded_docs() if live.key.doc == CHAT
        }
        if not docs:
            return
        rooms = sorted(docs)
        markers = await self.chat.meta.list_read_markers_of(rooms)
        shown = {room: read_users(docs[room].doc) for room in rooms}
        users = {m.user_id for found in markers.values() for m in found}
        private = await self.chat.meta.get_private_read_markers(users.union(*shown.values()))
        changed = 0
        for room in rooms:
            if _looks_wrong(markers.get(room, []), shown[room], private):
                changed += await self.recheck(room)
        if changed:
            log.info("%d chat docs showed read markers a lost notice left wrong", changed)

    async def recheck(self, room_id: str) -> int:
        """Make the loaded chat doc of ``room_id`` hide the private markers and show the public
        ones it lacks (module docstring); 1 when it changed, else 0."""
        key = chat_key(room_id)
        if self.chat.registry.get(key) is None:
            return 0  # let go meanwhile: its next load reads the store
        registry, window = self.chat.registry, self.chat.window
        live = await registry.acquire(key)
        try:
            async with self.chat.reads_lock(room_id):
                markers = await self.chat.meta.list_read_markers(room_id)
                shown = read_users(live.doc)
                private = await self.chat.meta.get_private_read_markers(
                    {m.user_id for m in markers} | shown
                )
                shown = read_users(live.doc)  # as it is now, after the reads
                hidden = sorted(shown & private)
                missing = {
                    m.user_id: m.up_to
                    for m in markers
                    if m.user_id not in private and m.up_to > 0 and m.user_id not in shown
                }
                if not hidden and not missing:
                    return 0
                committed = await window.show_reads(live, missing, hidden)
            await committed
        finally:
            registry.release(live)
        return 1


def _looks_wrong(markers: list[ReadMarker], shown: set[str], private: set[str]) -> bool:
    """A private user's entry shown, or a public marker without one (``recheck`` decides)."""
    if shown & private:
        return True
    return any(m.user_id not in private and m.up_to > 0 and m.user_id not in shown for m in markers)
