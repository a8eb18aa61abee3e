"""A live doc's outbox: what its peers may see only once the state it reflects is committed.

Frames (relays, "saved" echoes, answers to SyncStep1) and the futures of server-authored
changes wait here under the journal seq they depend on, and go, in order, when the journal
reports that seq committed (``release``). So no client ever receives uncommitted state, and
one client's frames keep the order the doc produced them in.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from collab.errors import RoomFailed
from collab.sync.journal import Journal
from collab.sync.peer import Peer


@dataclass(slots=True)
class Delivery:
    """A frame released once the state it reflects is committed: to one peer, or to every
    peer but ``exclude`` when ``to`` is None. (Not frozen: one per update, and a frozen
    dataclass pays an ``object.__setattr__`` call per field.)"""

    seq: int
    frame: bytes
    to: Peer | None = None
    exclude: int | None = None
    initial: bool = False  # the answer to ``to``'s first SyncStep1 (Peer.send_initial)


def _seq(delivery: Delivery) -> int:
    return delivery.seq


def _first(waiter: tuple[int, asyncio.Future[None]]) -> int:
    return waiter[0]


class Outbox:
    def __init__(self, journal: Journal, broadcast: Callable[[bytes, int | None], None]) -> None:
        self.journal = journal
        self._broadcast = broadcast
        # Lists, not deques, both by journal seq: one pair per loaded doc, nearly always
        # empty, and an empty deque holds a 0.7 KB block. ``release`` takes a whole prefix at
        # once, so the list's front removal is one move per commit, not one per item.
        self.deliveries: list[Delivery] = []
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []

    def after_commit(self, peer: Peer | None, frame: bytes, *, initial: bool = False) -> None:
        """Send ``frame`` to ``peer`` (None: every peer) once everything applied so far is
        committed."""
        journal = self.journal
        if journal.committed < journal.recorded:
            self.deliveries.append(Delivery(journal.recorded, frame, to=peer, initial=initial))
        elif peer is None:
            self._broadcast(frame, None)
        elif initial:
            peer.send_initial(frame)
        else:
            peer.send(frame)

    def release(self, upto: int) -> None:
        """Everything up to journal seq ``upto`` is committed: send and resolve what waited."""
        deliveries, waiters = self.deliveries, self.waiters
        due = bisect_right(deliveries, upto, key=_seq)  # seqs never decrease
        if due:
            batch = deliveries[:due]
            del deliveries[:due]  # before sending: what a delivery adds lands after them
            for delivery in batch:
                self._deliver(delivery)
        due = bisect_right(waiters, upto, key=_first)
        if due:
            resolved = waiters[:due]
            del waiters[:due]
            for _, waiter in resolved:
                if not waiter.done():
                    waiter.set_result(None)

    def fail(self) -> None:
        """The doc can no longer commit: nothing waiting is sent; every waiter fails."""
        self.deliveries.clear()
        failed = list(self.waiters)
        self.waiters.clear()
        for _, waiter in failed:
            if not waiter.done():
                waiter.set_exception(RoomFailed())

    def _deliver(self, delivery: Delivery) -> None:
        if delivery.initial and delivery.to is not None:
            delivery.to.send_initial(delivery.frame)
        elif delivery.to is not None:
            delivery.to.send(delivery.frame)
        else:
            self._broadcast(delivery.frame, delivery.exclude)
