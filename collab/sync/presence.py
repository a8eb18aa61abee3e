"""Awareness (presence) states of one document, with ownership rules (DESIGN.md, Presence).

The server keeps the latest state of every Yjs client id and who owns it:

- an id belongs to one principal; a later connection of the same principal takes it over
  (a reconnecting tab keeps its client id), another principal may neither set nor remove it;
- one connection owns at most ``max_clients_per_peer`` ids;
- states were validated by ``collab.wire.scan_awareness`` (a JSON object or null, bounded);
- a state is accepted only when its clock moves forward (y-websocket clients echo every remote
  update back: those echoes carry old clocks and are dropped here, never relayed);
- when a socket closes, its ids are removed and the removal is broadcast.

``Presence`` is sans-IO: methods return the entries to broadcast; the caller encodes and sends
them. ``AwarenessGate`` is each socket's awareness rate: within it a message passes at once;
over it only each client id's latest state is kept (every awareness message is a whole state,
so the ones in between carry nothing that is lost) and delivered once the budget allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from collab.ratelimit import Bucket
from collab.wire import AwarenessEntry


@dataclass
class _State:
    owner: int  # peer id
    principal: str
    clock: int
    state: bytes | None


class Presence:
    def __init__(self, max_clients_per_peer: int = 4) -> None:
        self.max_clients_per_peer = max_clients_per_peer
        self._states: dict[int, _State] = {}

    def __len__(self) -> int:
        return sum(1 for s in self._states.values() if s.state is not None)

    def snapshot(self) -> list[AwarenessEntry]:
        """Every present client's current state, for a newcomer."""
        return [
            AwarenessEntry(client, s.clock, s.state)
            for client, s in self._states.items()
            if s.state is not None
        ]

    def apply(
        self, peer_id: int, principal: str, entries: list[AwarenessEntry]
    ) -> list[AwarenessEntry]:
        """Apply a peer's entries; return those that changed something (to relay)."""
        changed: list[AwarenessEntry] = []
        for entry in entries:
            current = self._states.get(entry.client)
            if current is None:
                if entry.state is None:
                    continue  # removing what does not exist
                owned = sum(1 for s in self._states.values() if s.owner == peer_id)
                if owned >= self.max_clients_per_peer:
                    continue
                self._states[entry.client] = _State(peer_id, principal, entry.clock, entry.state)
                changed.append(entry)
                continue
            if current.principal != principal:
                continue  # someone else's id: spoofing changes nothing
            newer = entry.clock > current.clock
            same_clock_removal = entry.clock == current.clock and entry.state is None
            if not (newer or same_clock_removal):
                continue
            current.owner = peer_id  # takeover by the same principal's newer connection
            current.clock = entry.clock
            if entry.state is None:
                del self._states[entry.client]
            else:
                current.state = entry.state
            changed.append(entry)
        return changed

    def remove_peer(self, peer_id: int) -> list[AwarenessEntry]:
        """Drop every id the closing socket owns; return the removals to broadcast."""
        removed = []
        for client, state in list(self._states.items()):
            if state.owner == peer_id:
                del self._states[client]
                removed.append(AwarenessEntry(client, state.clock + 1, None))
        return removed


@dataclass
class _Lane:
    bucket: Bucket
    pending: dict[int, AwarenessEntry] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class AwarenessGate:
    """Awareness messages per peer, at most ``rate`` a second (``burst`` at once).

    ``offer`` returns what to apply now; what is held back reaches ``deliver(peer_id, entries)``
    later, from the event loop. ``forget`` (the socket closed) drops what is held.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        deliver: Callable[[int, list[AwarenessEntry]], None],
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._deliver = deliver
        self._lanes: dict[int, _Lane] = {}

    def offer(self, peer_id: int, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        lane = self._lanes.get(peer_id)
        if lane is None:
            lane = self._lanes[peer_id] = _Lane(Bucket(self.rate, self.burst))
        if not lane.pending and lane.bucket.try_take():
            return entries
        for entry in entries:
            lane.pending[entry.client] = entry
        if lane.timer is None:
            self._schedule(peer_id, lane)
        return []

    def _schedule(self, peer_id: int, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        lane.timer = loop.call_later(lane.bucket.wait_for(), self._release, peer_id)

    def _release(self, peer_id: int) -> None:
        lane = self._lanes.get(peer_id)
        if lane is None:
            return
        lane.timer = None
        if not lane.bucket.try_take():
            self._schedule(peer_id, lane)
            return
        entries = list(lane.pending.values())
        lane.pending.clear()
        self._deliver(peer_id, entries)

    def forget(self, peer_id: int) -> None:
        lane = self._lanes.pop(peer_id, None)
        if lane is not None and lane.timer is not None:
            lane.timer.cancel()
