"""Which of this node's docs another node hosts too: only those have their updates published.

With room-affinity routing (deploy/), every client of a room is usually on one node. Publishing
that room's updates to streams only their own node reads costs, per commit, a round trip to
Redis and a wake-up of the node's reader on its own entry, for nothing: about a third of a
node's CPU per edit in bench/nodes.py. So a doc this node subscribes to starts **solo**: its
committed updates are not published (``skips``), until something says another node may host
it, and from then on until it is unsubscribed it is **shared** and published as before.

How nodes find each other, on the doc's own stream (every host reads it, solo or not):

- a subscription whose cursor it fetched itself publishes ``join`` (after the cursor: its
  node reads every answer);
- a node that reads another's ``join`` answers ``host``, and the doc is shared;
- a node that reads another's ``host`` resyncs the doc from the store (``Subscriber.on_resync``):
  the other node's commits while it was solo were not published, and are in the store by the
  time its ``host`` is written; the doc is shared;
- any other entry of another node (an update, a control entry, an unreadable one) shares the
  doc too; a doc that turns shared publishes ``host`` (its own unpublished commits: the
  others resync). Both kinds are this module's: subscribers never see them.

Whenever the fan-out cannot promise a join or an answer was read (its cursor fetched late by
the reader after a failure, the key set aside, an entry this node published dropped), it
announces the doc (``announce``): shared, ``host`` published. Each step errs toward shared,
which costs only what publishing always cost. A doc's ``host`` carries no seq: its receivers
read the store, which holds every commit made before it was written.
"""

from __future__ import annotations

from collections.abc import Callable

from collab.fanout.base import HOST, JOIN, UPDATE, Entry

NO_GENERATION = "-"  # the ``gen`` field of join and host entries (they name no generation)


class Hosts:
    """``publish(stream_key, entry)`` queues an entry of this node (stamped, never skipped)."""

    def __init__(self, publish: Callable[[str, Entry], None]) -> None:
        self._publish = publish
        self._solo: set[str] = set()  # stream keys of subscribed docs no other node hosts

    def solo(self, skey: str) -> bool:
        return skey in self._solo

    def skips(self, skey: str, entry: Entry) -> bool:
        """Whether ``entry`` need not be published: an update of a solo doc."""
        return entry.kind == UPDATE and skey in self._solo

    def joined(self, skey: str) -> None:
        """The doc's subscription fetched its cursor: solo until another node answers."""
        self._solo.add(skey)
        self._publish(skey, Entry(0, NO_GENERATION, kind=JOIN))

    def left(self, skey: str) -> None:
        self._solo.discard(skey)

    def announce(self, skey: str) -> None:
        """Shared from now on, and the other hosts told (they resync)."""
        self._solo.discard(skey)
        self._publish(skey, Entry(0, NO_GENERATION, kind=HOST))

    def announce_all(self, skeys: list[str]) -> None:
        for skey in skeys:
            self.announce(skey)

    def heard(self, skey: str, kind: str) -> bool:
        """Another node's entry of ``kind`` was read on ``skey``, a subscribed doc's stream.
        True if it was a hosts' entry (``join``), which the subscriber is not given; a ``host``
        is given to it as a resync by the caller (``resyncs``)."""
        if kind == JOIN:
            self.announce(skey)  # answered whether solo or not: the joiner learns of us
            return True
        if skey in self._solo:
            self.announce(skey)
        return False

    @staticmethod
    def resyncs(kind: str) -> bool:
        return kind == HOST
