"""The Fanout seam: committed updates (and a few control hints) between ``collab serve`` nodes.

When several nodes share a room, the node whose client sent an update commits it to the store,
where it gets the doc's next gapless sequence number, then *publishes* it here; every other
node hosting that doc receives it, applies it with a remote origin and relays it to its own
peers, never committing it again. The channel is allowed to lose entries (Redis restarted,
trimmed, unreachable): the store is the record, and a subscriber that may have missed something
is told so (``Subscriber.on_resync``) and catches up from the store by sequence number. So a
Fanout promises only: what it delivers was published by another node, in the order that node
published it per doc; and when it cannot promise it delivered everything, it says so.

An ``Entry`` is an update (``kind`` ``update``: ``seq``, the doc's ``generation`` and the
emitted update bytes, or None when it was too large to carry) or a control hint (``gone``: the
doc was deleted; ``reset``: its generation was renewed), which a subscriber checks against the
store before acting (nothing in a channel is trusted to close sockets on its own).

Three more things cross nodes beside a doc's entries:

- a ``Notice`` is node-wide (``role``: a member's role in a room changed; ``access``: a
  credential of a user, or a room token of a room, was revoked, or the user disabled;
  ``room_gone``: a room was deleted; ``feed``: a room's unread counts or a user's room list
  changed; ``reads``: a user's read markers turned private or public): every other node's
  ``NoticeWatcher`` gets it and re-reads what it names from the MetaStore (a notice carries no
  role, no credential, no count and no setting: a channel is never trusted with access, and
  what a live stream or a chat doc shows is read from the store);
- an ``AwarenessRecord`` is one Yjs client's awareness state on a doc (never stored anywhere
  but the channel): the channel keeps each doc's current states with their owning principal
  and node, refuses a record for a client id another principal holds, and hands the changes
  to every other node following the doc (``AwarenessWatcher``). Nodes beat a heartbeat
  (``nodes_alive``), so the states of a node that died are dropped by the others;
- rate limits per user or client address (``limiter``): one bucket per key for all nodes, so a
  client spread over N nodes gets the configured rate, not N times it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collab.names import DocKey
from collab.ratelimit import Limiter, RateLimiter

UPDATE = "update"
GONE = "gone"
RESET = "reset"
JOIN = "join"  # a node began hosting the doc (``collab.fanout.hosts``; never delivered)
HOST = "host"  # a node hosts the doc and publishes its updates (delivered as a resync)
KINDS = (UPDATE, GONE, RESET, JOIN, HOST)
ROLE = "role"  # a Notice: a member's role in a room changed
ACCESS = "access"  # a Notice: credentials of a user (or a room's tokens) were revoked
ROOM_GONE = "room_gone"  # a Notice: a room was deleted
FEED = "feed"  # a Notice: a room's unread counts (or a user's room list) changed
READS = "reads"  # a Notice: a user's read markers turned private (or public again)
NOTICE_KINDS = (ROLE, ACCESS, ROOM_GONE, FEED, READS)


@dataclass(frozen=True, slots=True)
class Entry:
    """One published thing. ``seq`` is the update's sequence number in the store (a control
    entry: the doc's head when sent); ``sent_at`` the publisher's clock (fan-out lag)."""

    seq: int
    generation: str
    update: bytes | None = None
    kind: str = UPDATE
    node: str = ""  # the publishing node (stamped by the Fanout)
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Notice:
    """A node-wide hint: ``kind`` ``role``: ``user``'s role in ``room`` changed (or they were
    removed); ``access``: a credential of ``user`` ended (or, ``user`` empty, a room token of
    ``room``); ``room_gone``: ``room`` was deleted; ``feed``: ``room``'s counts changed (or,
    ``room`` empty, ``user``'s room list); ``reads``: ``user``'s read markers turned private
    (or public again). Receivers re-read what it names from the MetaStore before acting."""

    kind: str
    room: str
    user: str
    node: str = ""  # the publishing node (stamped by the Fanout)
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class AwarenessRecord:
    """One client's awareness on a doc, as nodes share it: the server-stamped ``state`` (None:
    removed) at ``clock``, owned by ``principal`` (the presence owner), set through ``node``;
    ``expires``: wall-clock seconds after which a record not renewed is stale."""

    client: int
    clock: int
    principal: str
    state: bytes | None
    node: str = ""  # stamped by the Fanout
    expires: float = 0.0  # likewise


class NoticeWatcher(Protocol):
    """A node's receiver of the others' notices (``collab.sync.roles.RoleFollower``)."""

    def on_notice(self, notice: Notice) -> None:
        """Another node published ``notice``. Must not raise or block."""

    def on_notice_resync(self) -> None:
        """Notices may have been missed: recheck whatever they could have named."""


class AwarenessWatcher(Protocol):
    """A loaded doc's awareness across nodes (``collab.sync.sharedpresence.SharedPresence``)."""

    def on_awareness(self, record: AwarenessRecord) -> None:
        """Another node's client changed its state (validated). Must not raise or block."""

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        """A record this node published was refused: another principal holds the client id
        (or the doc is at its cap of shared states)."""

    def on_awareness_resync(self) -> None:
        """Changes may have been missed: read the current states again (and the channel may
        have lost this node's: a reconnect, Redis restarted empty)."""

    def on_awareness_gap(self) -> None:
        """Changes were trimmed from the stream before this node read them: read the current
        states again. The channel still holds this node's (a trim removes changes, not
        states): not republished, or a flood of changes would feed itself."""


class Subscriber(Protocol):
    """A loaded doc, as the fan-out delivers to it (``collab.sync.follower.Follower``)."""

    def on_entry(self, entry: Entry) -> None:
        """Another node published ``entry`` for this doc. Must not raise or block."""

    def on_resync(self) -> None:
        """Entries may have been missed (the channel reconnected, a subscription started late,
        an entry was unreadable): catch up from the store."""


@dataclass
class FanoutStats:
    """Counters a scrape reads (``collab.metrics``); nothing on the hot path but ``+= 1``."""

    published: int = 0  # entries handed to the channel
    unshared: int = 0  # updates not published: no other node hosts their doc (solo)
    publish_dropped: int = 0  # entries never sent: queue full, channel down, key refused
    received: int = 0  # entries of other nodes delivered to a subscriber
    bad_entries: int = 0  # unreadable entries skipped
    bad_keys: int = 0  # keys that could not be read (not a stream...): read around
    errors: int = 0  # channel failures (connection lost, timeouts): each one a reconnect
    notices: int = 0  # notices of other nodes delivered
    awareness_published: int = 0  # awareness records the channel took
    awareness_received: int = 0  # other nodes' awareness records delivered
    awareness_refused: int = 0  # records refused: another principal's client id, or the cap
    rate_checks: int = 0  # rate-limit checks decided by the shared bucket
    rate_fallbacks: int = 0  # rate-limit checks this node decided alone: the channel was down
    notice_gaps: int = 0  # notices removed (trimmed) before this node read them: rechecked
    awareness_gaps: int = 0  # awareness changes trimmed before this node read them: re-read


class Fanout(Protocol):
    """One node's end of the channel (``node`` names it; entries it published never come back
    to it). ``publish`` never blocks and never raises: a slow or dead channel costs latency
    (subscribers catch up from the store), never a commit or a "saved"."""

    node: str
    stats: FanoutStats

    @property
    def healthy(self) -> bool:
        """Whether the channel currently works (false: poll the store often instead)."""

    def degraded(self, key: DocKey) -> bool:
        """Whether ``key``'s deliveries may be missing (channel down, or its key unreadable)."""

    async def start(self) -> None:
        """Start delivering (the reader) and publishing (the writer)."""

    async def close(self) -> None:
        """Stop both; what is still queued is dropped (the store has it)."""

    async def subscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        """Deliver entries other nodes publish for ``key`` from now on (subscribe before
        loading: what was published before the load is in the store). Never raises: if the
        channel cannot say where "now" is, the subscriber gets ``on_resync`` once it can."""

    def unsubscribe(self, key: DocKey, subscriber: Subscriber) -> None:
        """Stop delivering ``key`` to ``subscriber`` (a later subscriber of it is kept)."""

    def publish(self, key: DocKey, entry: Entry) -> None:
        """Queue ``entry`` for every other node subscribed to ``key``."""

    async def watch_notices(self, watcher: NoticeWatcher) -> None:
        """Deliver the other nodes' notices to ``watcher`` (one per node) from now on."""

    def notify(self, notice: Notice) -> None:
        """Queue ``notice`` for every other node. Never blocks, never raises."""

    async def follow_awareness(
        self, key: DocKey, watcher: AwarenessWatcher
    ) -> list[AwarenessRecord]:
        """Deliver the other nodes' awareness changes of ``key`` to ``watcher`` from now on,
        and return the states the channel holds now (validated, other nodes' only). Never
        raises: [] when the channel is down (the watcher is told to resync once it is up)."""

    async def awareness_states(self, key: DocKey) -> list[AwarenessRecord]:
        """The states the channel holds for ``key`` now (valid, unexpired, other nodes'
        only); [] when it cannot say."""

    def unfollow_awareness(self, key: DocKey, watcher: AwarenessWatcher) -> None:
        """Stop delivering ``key``'s awareness to ``watcher``."""

    def publish_awareness(
        self, key: DocKey, records: list[AwarenessRecord], watcher: AwarenessWatcher
    ) -> None:
        """Queue this node's clients' changes; ``watcher`` hears of refused ones."""

    async def nodes_alive(self, nodes: set[str]) -> set[str] | None:
        """Which of ``nodes`` beat their heartbeat lately; None when the channel cannot say."""

    async def forget_awareness(self, key: DocKey, node: str, clients: list[int]) -> None:
        """Drop ``key``'s shared states of ``clients`` still set through ``node`` (it died)."""

    async def put_here(self, summaries: dict[str, bytes | None]) -> bool:
        """Set (None: remove) this node's presence summary of each room; whether it took."""

    async def read_here(self, rooms: list[str]) -> dict[str, dict[str, bytes]] | None:
        """Each room's other nodes' summaries, by node; None when the channel cannot say."""

    async def mark_here(self) -> bool | None:
        """Renew this node's mark: True when it was missing (the channel lost this node's
        summaries: write them all again); None when the channel cannot say."""

    async def drop_here(self, node: str, rooms: list[str]) -> None:
        """Drop a dead node's summaries of ``rooms`` (and its mark)."""

    def limiter(self, kind: str, local: RateLimiter) -> Limiter:
        """``local``'s rate and burst, each key's bucket shared by every node on the channel
        (``kind`` names the rate); ``local`` decides while the channel does not answer."""
