"""A loaded doc's end of the fan-out: other nodes' updates in order, gaps filled from the store.

The store numbers every doc's updates without gaps, so a node knows exactly what its replica
lacks (``SeqSet``). An entry that is next in line is applied at once (``Target.apply_remote``:
the bounded scan, the nesting check, the apply with a remote origin, the relay; never a
commit). One that skips ahead waits a moment (``GAP_WAIT``) for the ones before it, since
entries of different nodes race each other, then the store fills the gap: ``updates_after``
the head, each row applied unless already held. Anything the follower cannot judge on its own
(a generation it does not know, a control entry, an update not carried, the channel saying it
may have lost entries) is a reason to read the store, never to trust the channel.

``catch_up`` is that read on demand: a joiner awaits one that *started after* it arrived, so
whatever anyone saw "saved" on another node is in the doc before the joiner's sync is answered
(read-your-writes across nodes); concurrent joiners share reads without ever taking an older
one. Reads of one doc run one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from collab import logs
from collab.errors import CollabError, must_propagate
from collab.fanout import UPDATE, Entry
from collab.names import DocKey
from collab.store.base import DocumentStore, StoredDoc
from collab.sync.hooks import SyncHooks
from collab.sync.seqs import SeqSet

log = logging.getLogger("collab.sync.follower")

GAP_WAIT = 0.2  # seconds an entry past a gap waits for the ones before it
EARLY_LIMIT = 1024  # entries held past a gap (more: read the store now)
EARLY_BYTES = 8 * 1024 * 1024


class Target(Protocol):
    """The live doc, as the follower drives it (``collab.sync.livedoc.LiveDoc``)."""

    @property
    def key(self) -> DocKey: ...
    @property
    def generation(self) -> str | None: ...
    @property
    def usable(self) -> bool:
        """Loaded, not being rebuilt, not failed: updates may be applied."""

    @property
    def active(self) -> bool:
        """Someone is connected here: worth keeping current without being asked."""

    async def until_usable(self) -> None:
        """Wait for a rebuild to end; RoomFailed if the doc failed."""

    def apply_remote(self, update: bytes) -> bool:
        """Apply and relay a stored update; False if refused (nothing applied)."""

    def adopt_stored(self, stored: StoredDoc) -> None:
        """The doc was created elsewhere since the load: take its generation."""

    def generation_changed(self, generation: str | None) -> None:
        """The stored doc is another one now (None: deleted): close, forget."""

    def rebuild(self) -> None:
        """Rebuild the replica from the store (a stored row was refused)."""


class Follower:
    def __init__(
        self, target: Target, held: SeqSet, store: DocumentStore, hooks: SyncHooks
    ) -> None:
        self.target = target
        self.held = held
        self.store = store
        self.hooks = hooks
        self.last_checked = 0.0  # monotonic time the last store read ended
        self._early: dict[int, tuple[str, bytes]] = {}  # past a gap: seq -> (generation, update)
        self._early_bytes = 0
        self._gap_timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._started = 0  # store reads started ...
        self._finished = 0  # ... and the number of the last one finished
        self._filling: asyncio.Task[None] | None = None
        self._again = False
        self._reread = False  # asked to fill while idle, during a read: read once more
        self._closed = False

    # -- what the fan-out delivers (collab.fanout.Subscriber) ----------------------------

    def on_entry(self, entry: Entry) -> None:
        if entry.sent_at:
            self.hooks.fanout_received(max(0.0, time.time() - entry.sent_at))
        target = self.target
        if entry.kind != UPDATE or (target.usable and entry.generation != target.generation):
            # Deleted or reset elsewhere, another generation, or one we never saw (created
            # since our load): the store says what is true.
            self.request_fill()
            return
        if entry.seq in self.held:
            return  # ours, or already read from the store
        if entry.update is None:
            self.request_fill()  # too large to carry: read it
            return
        if not target.usable or entry.seq != self.held.head + 1:
            self._hold(entry.seq, entry.generation, entry.update)
            return
        if self._apply(entry.seq, entry.update):
            self._drain()
        else:
            self.request_fill()  # the entry was refused: the store's row is the truth

    def on_resync(self) -> None:
        self.request_fill()

    # -- after a load, a rebuild or our own commit -------------------------------------

    def resume(self) -> None:
        """Apply what waited (the held set moved, or the doc became usable)."""
        if self._early:
            self._drain()

    def close(self) -> None:
        self._closed = True
        self._forget_early()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        if self._filling is not None and self._filling is not asyncio.current_task():
            self._filling.cancel()

    # -- reading the store ---------------------------------------------------------------

    async def catch_up(self) -> None:
        """Apply everything the store holds past the replica, read by a read that started
        after this call (read-your-writes). RoomFailed if the doc failed meanwhile."""
        need = self._started + 1
        async with self._lock:
            while self._finished < need or self._reread:
                if self._finished >= need:  # asked while the read ran: it may be older
                    self._reread, need = False, self._started + 1
                await self.target.until_usable()
                self._started += 1
                number = self._started
                head = self.held.head
                stored = await self.store.updates_after(self.target.key, head)
                self.last_checked = time.monotonic()
                if not self.target.usable:
                    continue  # rebuilt (or failing) meanwhile: read again once usable
                self._finished = number
                self._absorb(stored, head)

    def request_fill(self) -> None:
        """Catch up in the background (one fill at a time per doc; asked again while one
        runs: one more after it). Idle docs skip it: a joiner catches up anyway."""
        if self._closed:
            return
        if not self.target.active:
            # Idle: not kept current. But a joiner's read may be running, begun before what
            # this announces (another node's host answer: collab.fanout.hosts): read again.
            if self._lock.locked():
                self._reread = True
            return
        if self._filling is not None:
            self._again = True
            return
        self._filling = asyncio.get_running_loop().create_task(
            self._fill(), context=logs.detached()
        )

    async def _fill(self) -> None:
        key = self.target.key
        try:
            while True:
                self._again = False
                await self.catch_up()
                if not self._again:
                    return
        except CollabError:
            return  # failed, deleted or reset: its sockets are closed already
        except BaseException as exc:
            if must_propagate(exc) or isinstance(exc, asyncio.CancelledError):
                raise
            # The next entry, resync or head check tries again.
            log.warning("catching up %s failed: %r", key, exc, extra=logs.doc_fields(key))
        finally:
            self._filling = None

    def _absorb(self, stored: StoredDoc, head: int) -> None:
        target = self.target
        if stored.generation != target.generation:
            if target.generation is None and stored.generation is not None:
                target.adopt_stored(stored)  # created on another node since our load
            else:
                target.generation_changed(stored.generation)
                return
        if not stored.exists:
            return
        applied = 0
        if stored.snapshot is not None:  # the rows we lack were compacted: the whole doc
            if not target.apply_remote(stored.snapshot):
                target.rebuild()
                return
            applied += 1
        for seq, update in stored.updates:
            if seq in self.held:
                continue
            if not self._apply(seq, update):
                target.rebuild()
                return
            applied += 1
        if stored.snapshot is not None:
            self.held.cover(stored.last_seq)
        if applied:
            self.hooks.gap_filled(applied)
        self._drain()

    # -- entries past a gap --------------------------------------------------------------

    def _apply(self, seq: int, update: bytes) -> bool:
        if not self.target.apply_remote(update):
            return False
        self.held.add(seq)
        return True

    def _hold(self, seq: int, generation: str, update: bytes) -> None:
        if seq in self._early:
            return
        if len(self._early) >= EARLY_LIMIT or self._early_bytes + len(update) > EARLY_BYTES:
            self._forget_early()
            self.request_fill()
            return
        self._early[seq] = (generation, update)
        self._early_bytes += len(update)
        if self._gap_timer is None and self.target.usable:
            self._gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT, self._gap_expired)

    def _drain(self) -> None:
        early, target = self._early, self.target
        if not target.usable:
            return
        for seq in [s for s in early if s in self.held]:
            self._early_bytes -= len(early.pop(seq)[1])
        while early:
            seq = self.held.head + 1
            found = early.pop(seq, None)
            if found is None:
                break
            generation, update = found
            self._early_bytes -= len(update)
            if generation != target.generation or not self._apply(seq, update):
                self._forget_early()
                self.request_fill()
                break
        if not early and self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None
        elif early and self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT, self._gap_expired)

    def _forget_early(self) -> None:
        self._early.clear()
        self._early_bytes = 0

    def _gap_expired(self) -> None:
        self._gap_timer = None
        if self._early:
            self.request_fill()
