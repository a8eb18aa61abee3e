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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collab.names import DocKey

UPDATE = "update"
GONE = "gone"
RESET = "reset"
KINDS = (UPDATE, GONE, RESET)


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
    publish_dropped: int = 0  # entries never sent: queue full, channel down, key refused
    received: int = 0  # entries of other nodes delivered to a subscriber
    bad_entries: int = 0  # unreadable entries skipped
    bad_keys: int = 0  # keys that could not be read (not a stream...): read around
    errors: int = 0  # channel failures (connection lost, timeouts): each one a reconnect


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
