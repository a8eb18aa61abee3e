"""One live stream per signed-in user (``/ws/_me``): unread counts, mentions and room presence
for every room and DM of theirs, so a sidebar needs no socket per room.

The hub only knows which streams are open and which rooms each one watches; changes are
signalled, never computed, where they happen (a message posted, a marker moved, a socket
joining or leaving a doc, a membership changing): :meth:`FeedHub.room_changed` marks the room
dirty on every stream that watches it and wakes them; :meth:`FeedHub.user_changed` asks that
user's streams to reload their room list. Each stream's own task then does the work, at most
once per ``COALESCE`` seconds however many signals came (``collab.sync.feedserve``). Streams
are bounded per user (``MAX_FEEDS_PER_USER``, on top of ``max_connections_per_user``) and
close like any socket when their credential ends.

With other nodes (``announce`` set), a signal given ``everywhere`` (a post, a marker moved, a
room or DM created: what the store holds changed) is also sent to them as a ``feed`` notice,
at most one per room (or user) per ``COALESCE`` seconds however many came; each of them marks
its own streams the same way (``on_notice``). A notice carries no count: every stream reads
its counts from the store, so a change signalled twice (or by a flood of posts) is counted
once. Presence (``here``) is shared through the channel's room summaries
(``collab.sync.feedhere``, the hub's ``board``): a socket joining or leaving a doc here
(``presence_changed``) rewrites this node's summary of the room, then a ``feed`` notice sends
the other nodes' streams to read it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from collab import logs
from collab.fanout import FEED, Notice
from collab.sync.peer import Peer

MAX_FEEDS_PER_USER = 8  # live streams per user (tabs); past it a new one is closed 1013
COALESCE = 0.1  # seconds a stream waits after a signal, so a burst costs one update


class PresenceBoard(Protocol):
    """The other nodes' presence (``collab.sync.feedhere.SharedHere``)."""

    def changed(self, room_id: str) -> None:
        """Who is in ``room_id`` on this node changed: share it."""

    async def remote(self, room_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Who is in each room on the other nodes (live ones only)."""


class Feed:
    """One open stream: its user, its socket's peer, the rooms it watches, what changed."""

    def __init__(self, user_id: str, peer: Peer) -> None:
        self.user_id = user_id
        self.peer = peer
        self.rooms: set[str] = set()
        self.listed: dict[str, str] = {}  # room id -> the role its last list showed
        self.dirty: set[str] = set()
        self.reload = True  # the room list itself must be (re)read
        self.wake = asyncio.Event()
        self.wake.set()

    def mark(self, room_id: str | None) -> None:
        if room_id is None:
            self.reload = True
        else:
            self.dirty.add(room_id)
        self.wake.set()


class FeedHub:
    """The open streams, by user and by watched room."""

    def __init__(self, announce: Callable[[Notice], None] | None = None) -> None:
        self._by_user: dict[str, list[Feed]] = defaultdict(list)
        self._by_room: dict[str, set[Feed]] = defaultdict(set)
        self._announce = announce  # the other nodes' notices (None: one node)
        self._outgoing: dict[tuple[str, str], None] = {}  # (room, user) to announce
        self.announced = 0  # feed notices sent (tests: a flood is coalesced)
        self.board: PresenceBoard | None = None  # the other nodes' presence (None: one node)

    def __len__(self) -> int:
        return sum(len(feeds) for feeds in self._by_user.values())

    def __iter__(self) -> Iterator[Feed]:
        for feeds in list(self._by_user.values()):
            yield from list(feeds)

    def count(self, user_id: str) -> int:
        return len(self._by_user.get(user_id, ()))

    def users(self) -> set[str]:
        """The users with a stream open here."""
        return set(self._by_user)

    def listed(self, user_id: str) -> list[dict[str, str]]:
        """What each of the user's streams last listed: room id -> role."""
        return [feed.listed for feed in self._by_user.get(user_id, ())]

    def add(self, feed: Feed) -> bool:
        """Register a stream; False when its user already has ``MAX_FEEDS_PER_USER``."""
        feeds = self._by_user[feed.user_id]
        if len(feeds) >= MAX_FEEDS_PER_USER:
            return False
        feeds.append(feed)
        return True

    def remove(self, feed: Feed) -> None:
        feeds = self._by_user.get(feed.user_id)
        if feeds is not None and feed in feeds:
            feeds.remove(feed)
            if not feeds:
                del self._by_user[feed.user_id]
        self.watch(feed, set())

    def watch(self, feed: Feed, rooms: set[str]) -> None:
        """Set the rooms a stream watches (its user's rooms and DMs)."""
        for room_id in feed.rooms - rooms:
            watchers = self._by_room.get(room_id)
            if watchers is not None:
                watchers.discard(feed)
                if not watchers:
                    del self._by_room[room_id]
        for room_id in rooms - feed.rooms:
            self._by_room[room_id].add(feed)
        feed.rooms = set(rooms)

    def room_changed(self, room_id: str, *, everywhere: bool = False) -> None:
        """Something in the room changed (messages, markers, presence): its watchers look;
        ``everywhere``: on the other nodes too (what the store holds changed)."""
        for feed in list(self._by_room.get(room_id, ())):
            feed.mark(room_id)
        if everywhere:
            self._share(room_id, "")

    def presence_changed(self, room_id: str) -> None:
        """A socket here joined or left one of the room's docs."""
        self.room_changed(room_id)
        if self.board is not None:
            self.board.changed(room_id)

    def share_room(self, room_id: str) -> None:
        """Send the other nodes' watchers of the room to look (a ``feed`` notice)."""
        self._share(room_id, "")

    def watched_rooms(self) -> set[str]:
        return set(self._by_room)

    def room_gone(self, room_id: str) -> None:
        """The room was deleted: its watchers reload their lists."""
        for feed in list(self._by_room.get(room_id, ())):
            feed.mark(None)

    def user_changed(self, user_id: str, *, everywhere: bool = False) -> None:
        """The user's rooms changed (added, removed, a role, a new DM): reload their list;
        ``everywhere``: on the other nodes too."""
        for feed in list(self._by_user.get(user_id, ())):
            feed.mark(None)
        if everywhere:
            self._share("", user_id)

    # -- other nodes ---------------------------------------------------------------------------

    def _share(self, room_id: str, user_id: str) -> None:
        if self._announce is None:
            return
        if not self._outgoing:
            loop = asyncio.get_running_loop()
            loop.call_later(COALESCE, self._send, context=logs.detached())
        self._outgoing[(room_id, user_id)] = None

    def _send(self) -> None:
        outgoing, self._outgoing = self._outgoing, {}
        if self._announce is None:
            return
        for room_id, user_id in outgoing:
            self._announce(Notice(FEED, room_id, user_id))
            self.announced += 1

    def on_notice(self, notice: Notice) -> None:
        """Another node's ``feed`` notice: mark the streams here as it would have."""
        if notice.kind != FEED:
            return
        if notice.room:
            self.room_changed(notice.room)
        else:
            self.user_changed(notice.user)

    def on_notice_resync(self) -> None:
        """Notices may have been missed: every stream reads its list again."""
        for feed in self:
            feed.mark(None)

    def close_matching(self, code: int, reason: str, match: Callable[[Peer], bool]) -> int:
        """Close the streams whose peer matches (``RoomRegistry.close_matching``'s rule)."""
        closed = 0
        for feed in self:
            if match(feed.peer):
                feed.peer.close(code, reason)
                closed += 1
        return closed
