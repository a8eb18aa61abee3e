"""A loaded doc's awareness across nodes: what its sockets set is shown on every node.

Awareness lives only in the channel (Redis), never in the store. Each change a socket here makes
that ``Presence`` accepted (a state set, a socket's ids removed when it closes, a ``typing``
the server cleared) is published with its owning principal; the channel keeps each doc's
current states and refuses a client id another principal holds on any node (then this doc
reads the channel's states again, and the holder's state replaces ours here, so from then on
this node refuses that id itself, as on one node). The other nodes' changes arrive through
``on_awareness`` and go to every peer here. Following starts with the channel's current
states; when the channel may have lost changes (a reconnect, Redis restarted empty) the doc
reads them all again and publishes its own sockets' states again. When changes were only
trimmed from the stream before this node read them (a gap), it reads them all again and
publishes nothing: the channel's states, ours among them, are intact, and republishing under a
flood of changes would add to it. The states of a node that stopped beating its heartbeat are
dropped by ``PresenceSweeper`` (``collab.sync.nodesweep``).

A removal read from the stream may overtake a read of all states that started before it; the
last removed clock of each client id (a bounded memory) keeps such a read from bringing the
removed state back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from collab import logs
from collab.fanout import AwarenessRecord, Fanout
from collab.names import DocKey
from collab.sync.presence import Presence, next_clock
from collab.wire import AwarenessEntry, encode_awareness, framing

log = logging.getLogger("collab.sync.presence")

REMOVED_LIMIT = 4096  # client ids whose last removal is remembered, per doc


class PresenceHost(Protocol):
    """The live doc, as its shared presence uses it (``collab.sync.livedoc.LiveDoc``)."""

    key: DocKey
    presence: Presence

    def broadcast(self, frame: bytes, exclude: int | None = None) -> None: ...


class SharedPresence:
    def __init__(self, live: PresenceHost, fanout: Fanout) -> None:
        self.live = live
        self.fanout = fanout
        self._removed: dict[int, int] = {}  # client id -> clock of its last remote removal
        self._reading: asyncio.Task[None] | None = None
        self._again = False
        self._republish = False
        self._closed = False

    async def start(self) -> None:
        """Follow the doc's awareness: the channel's current states, then its changes; share
        every change accepted here from now on."""
        self.live.presence.on_change = self.publish
        self._absorb(await self.fanout.follow_awareness(self.live.key, self))

    def stop(self) -> None:
        """Stop following (the doc is dropped here); states still set here are removed from
        the channel (a deleted doc's sockets close after this, unheard by the others)."""
        if self._closed:
            return
        for principal, entry in self.live.presence.local_states():
            self.publish(principal, [AwarenessEntry(entry.client, next_clock(entry.clock), None)])
        self._closed = True
        self.live.presence.on_change = None
        self.fanout.unfollow_awareness(self.live.key, self)
        if self._reading is not None and self._reading is not asyncio.current_task():
            self._reading.cancel()

    def publish(self, principal: str, entries: list[AwarenessEntry]) -> None:
        """Changes ``Presence`` accepted here (``Presence.on_change``), owned by ``principal``."""
        if not self._closed:
            records = [AwarenessRecord(e.client, e.clock, principal, e.state) for e in entries]
            self.fanout.publish_awareness(self.live.key, records, self)

    # -- what the fan-out delivers (collab.fanout.AwarenessWatcher) ---------------------------

    def on_awareness(self, record: AwarenessRecord) -> None:
        entry = self._apply(record)
        if entry is not None:
            self.live.broadcast(framing.awareness(encode_awareness([entry])))

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        log.info(
            "awareness client id %d of %s is another principal's on another node",
            record.client,
            self.live.key,
            extra=logs.doc_fields(self.live.key),
        )
        self._reread_soon()  # the holder's state takes the id here too

    def on_awareness_resync(self) -> None:
        self._republish = True  # the channel may have lost ours too (Redis restarted empty)
        self._reread_soon()

    def on_awareness_gap(self) -> None:
        self._reread_soon()  # the hash still holds ours: republishing could feed a flood

    # -- reading every state -----------------------------------------------------------------

    def _reread_soon(self) -> None:
        if self._closed:
            return
        if self._reading is not None:
            self._again = True
            return
        self._reading = asyncio.get_running_loop().create_task(
            self._reread(), context=logs.detached()
        )

    async def _reread(self) -> None:
        try:
            while True:
                self._again = False
                republish, self._republish = self._republish, False
                records = await self.fanout.awareness_states(self.live.key)
                if self._closed:
                    return
                self._absorb(records)
                if republish:
                    for principal, entry in self.live.presence.local_states():
                        self.publish(principal, [entry])
                if not self._again:
                    return
        finally:
            self._reading = None

    def _absorb(self, records: list[AwarenessRecord]) -> None:
        """Apply every state the channel holds; other nodes' states it lacks are gone."""
        presence, changed = self.live.presence, list[AwarenessEntry]()
        for record in records:
            entry = self._apply(record)
            if entry is not None:
                changed.append(entry)
        held = {record.client for record in records}
        gone = [client for client in presence.remote_clients() if client not in held]
        changed += presence.remove_remote(gone)
        if changed:
            self.live.broadcast(framing.awareness(encode_awareness(changed)))

    def _apply(self, record: AwarenessRecord) -> AwarenessEntry | None:
        if record.state is None:
            if len(self._removed) >= REMOVED_LIMIT:
                del self._removed[next(iter(self._removed))]
            self._removed[record.client] = record.clock
        elif record.clock < self._removed.get(record.client, -1):
            return None  # read before its removal, which arrived first
        return self.live.presence.apply_remote(
            record.client, record.clock, record.principal, record.node, record.state
        )

    # -- dead nodes (collab.sync.nodesweep) ----------------------------------------------------

    def drop_nodes(self, dead: set[str]) -> dict[str, list[int]]:
        """Drop the states set through ``dead`` nodes and tell every peer here; the client
        ids dropped, by node (for the channel to forget)."""
        presence, dropped = self.live.presence, dict[str, list[int]]()
        for node in dead & presence.remote_nodes():
            clients = presence.remote_clients(node)
            removed = presence.remove_remote(clients)
            if removed:
                self.live.broadcast(framing.awareness(encode_awareness(removed)))
            dropped[node] = clients
        return dropped
