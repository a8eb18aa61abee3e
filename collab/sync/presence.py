"""Awareness (presence) states of one document, with ownership rules (DESIGN.md, Presence).

The server keeps the latest state of every Yjs client id and who owns it:

- an id belongs to one principal; a later connection of the same principal takes it over
  (a reconnecting tab keeps its client id), another principal may neither set nor remove it,
  nor set it once removed (the principals of the last ``GONE_LIMIT`` ids removed are kept:
  a dropped tab reconnects with its id);
- one connection owns at most ``max_clients_per_peer`` ids;
- states were validated by ``collab.wire.scan_awareness`` (a JSON object or null, bounded);
- a state is accepted only when its clock moves forward (y-websocket clients echo every remote
  update back: those echoes carry old clocks and are dropped here, never relayed);
- a change is relayed to every socket of the doc, its sender included, as y-websocket's own
  server does: y-websocket's client closes and reopens a socket that received nothing for 30 s
  and counts on its own 15 s renewals coming back, so a client alone in a doc would otherwise
  reconnect (and sync again) every 30 s; the sender ignores its own state (same clock);
- when a socket closes, its ids are removed and the removal is broadcast;
- the server owns two fields (``collab.sync.stamps``, docs/awareness.md): ``user`` is stamped
  from the socket's principal on every state set, and ``typing`` not refreshed within
  ``typing_timeout`` seconds is cleared by ``expire_typing`` (one sweep per doc, not a timer per
  client). Stamping re-encodes a state, so it runs only when a client's state changed: a renewal
  (the same state with a new clock) reuses the stamped bytes.

With several nodes, every change accepted here also goes to ``on_change`` (to share), and
states other nodes set arrive through ``apply_remote`` (the channel vouches for their
principal: ``collab.sync.sharedpresence``): they are shown to every peer here and
obey the same ownership rule (another principal here may not take them), but they belong to
no socket here, their ``typing`` is their node's to clear, and at most ``max_remote`` of them
are kept. Without other nodes none ever exists and nothing here changes.

``Presence`` is sans-IO: methods return the entries to broadcast; the caller encodes and sends
them. ``AwarenessGate`` is each socket's awareness rate: within it a message passes at once;
over it only each client id's latest state is kept (every awareness message is a whole state,
so the ones in between carry nothing that is lost) and delivered once the budget allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collab.auth.principal import Principal
from collab.ratelimit import Bucket
from collab.sync.stamps import clear_typing, stamp
from collab.wire import MAX_SAFE_INT, AwarenessEntry

REMOTE = 0  # the owner of a state set through another node (peer ids start at 1)
GONE_LIMIT = 1024  # removed client ids whose principal is remembered, per doc


def next_clock(clock: int) -> int:
    """The clock the server gives a client id's next state (a removal, a cleared ``typing``):
    one past ``clock``, but never past the cap clients are held to (2**53-1: a client may send
    it; lib0 cannot encode more, and clients that echo it back would be closed 1007 for it).
    At the cap a removal keeps the clock, which y-protocols accepts for a removal."""
    return min(clock + 1, MAX_SAFE_INT)


@dataclass(slots=True)
class _State:
    owner: int  # peer id
    principal: str
    clock: int
    state: bytes | None
    sent: bytes | None = None  # the client's state before stamping, as last received
    stamped: bytes = b""  # what ``sent`` became once stamped ...
    stamped_for: Principal | None = None  # ... for this principal
    typing: bool = False  # ``sent`` says typing
    typing_since: float | None = None  # when typing was last set or refreshed; None: not typing
    node: str | None = None  # set through another node (None: through a socket here)


class Presence:
    def __init__(
        self,
        max_clients_per_peer: int = 4,
        typing_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_remote: int = 1024,
    ) -> None:
        self.max_clients_per_peer = max_clients_per_peer
        self.max_remote = max_remote
        # With other nodes: every change accepted here, with its owner, to share with them.
        self.on_change: Callable[[str, list[AwarenessEntry]], None] | None = None
        self.typing_timeout = typing_timeout
        self.now = clock
        self._states: dict[int, _State] = {}
        # The principal of each id removed lately: still theirs (a dropped tab reconnects with
        # its id), so another principal may not take it meanwhile. Oldest forgotten first.
        self._gone: dict[int, str] = {}
        self._anyone_typed = False  # since the last look: keeps the no-typing path O(1)

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
        self,
        peer_id: int,
        principal: str,
        entries: list[AwarenessEntry],
        identity: Principal | None = None,
    ) -> list[AwarenessEntry]:
        """Apply a peer's entries; return those that changed something (to relay).

        ``principal`` owns the ids; ``identity`` (the socket's principal) is stamped as ``user``.
        """
        changed: list[AwarenessEntry] = []
        for entry in entries:
            current = self._states.get(entry.client)
            if current is None:
                if entry.state is None:
                    continue  # removing what does not exist
                if self._gone.get(entry.client, principal) != principal:
                    continue  # another principal's id, removed lately: still theirs
                owned = sum(1 for s in self._states.values() if s.owner == peer_id)
                if owned >= self.max_clients_per_peer:
                    continue
                current = _State(peer_id, principal, entry.clock, None)
                self._states[entry.client] = current
                self._gone.pop(entry.client, None)
                changed.append(self._set(entry, current, identity))
                continue
            if current.principal != principal:
                continue  # someone else's id: spoofing changes nothing
            newer = entry.clock > current.clock
            same_clock_removal = entry.clock == current.clock and entry.state is None
            if not (newer or same_clock_removal):
                continue
            current.owner = peer_id  # takeover by the same principal's newer connection
            current.node = None  # (also of a state set through another node)
            current.clock = entry.clock
            if entry.state is None:
                del self._states[entry.client]
                self._forget(entry.client, principal)
                changed.append(entry)
            else:
                changed.append(self._set(entry, current, identity))
        if changed and self.on_change is not None:
            self.on_change(principal, changed)
        return changed

    def _set(
        self, entry: AwarenessEntry, current: _State, identity: Principal | None
    ) -> AwarenessEntry:
        """Store the entry's state stamped; a renewal of the same state is not stamped again."""
        assert entry.state is not None
        if entry.state != current.sent or identity is not current.stamped_for:
            stamped = stamp(entry.state, identity)
            current.sent, current.stamped_for = entry.state, identity
            current.stamped, current.typing = stamped.state, stamped.typing
        current.state = current.stamped
        current.typing_since = self.now() if current.typing else None
        self._anyone_typed = self._anyone_typed or current.typing
        return AwarenessEntry(entry.client, entry.clock, current.state)

    def next_typing_deadline(self) -> float | None:
        """When the next ``typing`` goes stale (the clock's time), or None: nobody types."""
        if not self._anyone_typed:
            return None
        since = [s.typing_since for s in self._states.values() if s.typing_since is not None]
        self._anyone_typed = bool(since)
        return min(since) + self.typing_timeout if since else None

    def expire_typing(self) -> list[AwarenessEntry]:
        """Clear every ``typing`` not refreshed within ``typing_timeout``.

        Returns the cleared states with their clock bumped, to broadcast to every peer, their
        owners included: a y-protocols client adopts a newer state of its own id as its local
        state (so it stops saying typing too) and numbers its next state past that clock.
        """
        now = self.now()
        expired: list[AwarenessEntry] = []
        for client, s in self._states.items():
            if s.typing_since is None or now - s.typing_since < self.typing_timeout:
                continue
            assert s.state is not None
            s.typing_since = None
            s.clock = next_clock(s.clock)
            s.state = clear_typing(s.state)
            expired.append(AwarenessEntry(client, s.clock, s.state))
            if self.on_change is not None:
                self.on_change(s.principal, expired[-1:])
        return expired

    def remove_peer(self, peer_id: int) -> list[AwarenessEntry]:
        """Drop every id the closing socket owns; return the removals to broadcast."""
        removed = []
        for client, state in list(self._states.items()):
            if state.owner == peer_id:
                del self._states[client]
                self._forget(client, state.principal)
                removed.append(AwarenessEntry(client, next_clock(state.clock), None))
                if self.on_change is not None:
                    self.on_change(state.principal, removed[-1:])
        return removed

    def _forget(self, client: int, principal: str) -> None:
        """``client`` was removed: remember it is still ``principal``'s."""
        self._gone.pop(client, None)
        if len(self._gone) >= GONE_LIMIT:
            del self._gone[next(iter(self._gone))]
        self._gone[client] = principal

    # -- states set through other nodes ----------------------------------------------------

    def apply_remote(
        self, client: int, clock: int, principal: str, node: str, state: bytes | None
    ) -> AwarenessEntry | None:
        """A state another node set, stamped there (None: removed); the entry to relay to
        every peer here, or None when it changes nothing. The channel said ``principal``
        holds ``client``, so it wins over a state of another principal here (which the
        channel refused, or which came after it)."""
        current = self._states.get(client)
        if current is None:
            if state is None:
                return None
            if sum(1 for s in self._states.values() if s.node is not None) >= self.max_remote:
                return None
            self._states[client] = _State(REMOTE, principal, clock, state, node=node)
            return AwarenessEntry(client, clock, state)
        if current.principal == principal:
            newer = clock > current.clock or (clock == current.clock and state is None)
            if not newer:
                return None
        if state is None:
            del self._states[client]
            return AwarenessEntry(client, clock, None)
        current.owner, current.principal, current.node = REMOTE, principal, node
        current.clock, current.state = clock, state
        current.sent, current.stamped_for = None, None
        current.typing, current.typing_since = False, None
        return AwarenessEntry(client, clock, state)

    def local_states(self) -> list[tuple[str, AwarenessEntry]]:
        """Every state set through a socket here, with its owning principal."""
        return [
            (s.principal, AwarenessEntry(client, s.clock, s.state))
            for client, s in self._states.items()
            if s.node is None and s.state is not None
        ]

    def remote_nodes(self) -> set[str]:
        return {s.node for s in self._states.values() if s.node is not None}

    def remote_clients(self, node: str | None = None) -> list[int]:
        """The ids set through ``node`` (None: through any other node)."""
        return [
            client
            for client, s in self._states.items()
            if s.node is not None and (node is None or s.node == node)
        ]

    def remove_remote(self, clients: list[int]) -> list[AwarenessEntry]:
        """Drop these states set through other nodes (a dead node's, or ones the channel no
        longer holds); the removals to relay to every peer here."""
        removed = []
        for client in clients:
            current = self._states.get(client)
            if current is not None and current.node is not None:
                del self._states[client]
                removed.append(AwarenessEntry(client, next_clock(current.clock), None))
        return removed


class TypingSweep:
    """One timer per doc that clears stale ``typing`` (``Presence.expire_typing``) and hands
    the cleared states to ``deliver`` (to broadcast to every peer, their owners included).

    ``arm`` after each applied change; idle while nobody types. A clear comes up to ``GRAIN``
    seconds late, so one sweep serves the states that go stale together.
    """

    GRAIN = 0.2  # seconds

    def __init__(self, presence: Presence, deliver: Callable[[list[AwarenessEntry]], None]) -> None:
        self._presence = presence
        self._deliver = deliver
        self.timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self.timer is not None:
            return  # it fires no later than any deadline set since (each is now + timeout)
        deadline = self._presence.next_typing_deadline()
        if deadline is not None:
            delay = max(deadline - self._presence.now(), 0.0) + self.GRAIN
            self.timer = asyncio.get_running_loop().call_later(delay, self._sweep)

    def _sweep(self) -> None:
        self.timer = None
        cleared = self._presence.expire_typing()
        if cleared:
            self._deliver(cleared)
        self.arm()


@dataclass(slots=True)
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

    def ask(self, peer_id: int) -> bool:
        """Whether to answer a query-awareness message now (every state of the doc, encoded
        for one 3-byte message): each answer spends the socket's awareness rate; past it the
        query is dropped (the states it would repeat reached the socket as they changed)."""
        lane = self._lanes.get(peer_id)
        if lane is None:
            lane = self._lanes[peer_id] = _Lane(Bucket(self.rate, self.burst))
        return lane.bucket.try_take()

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
