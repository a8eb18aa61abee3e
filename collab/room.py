"""A loaded document: its pycrdt Doc, presence, peers, and the path of one update.

Every incoming update follows one order (DESIGN.md, The path of one update):

    bounded scan -> nesting/pending check -> apply in doc.transaction(origin=peer),
    catching BaseException -> take what the Doc emitted (nothing: a duplicate) ->
    append it to the log in the current group commit -> after the commit: relay it,
    answer joiners, send "saved" echoes

Everything a peer may observe is released from one ordered outbox only after the state it
reflects is committed, so no client ever receives uncommitted state. A Doc that yrs left in a
bad state (a panic) is dropped and rebuilt from the store plus the not-yet-committed emitted
updates; the store never holds raw client bytes, so the rebuild heals it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from pycrdt import Doc

from collab import logs
from collab.docstate import KnownState
from collab.errors import DocTooLarge, HostileInput, Overloaded, RoomFailed, must_propagate
from collab.limits import Bucket
from collab.names import DocKey, is_reserved_doc
from collab.peer import Peer
from collab.presence import Presence
from collab.settings import Settings
from collab.store.base import DocumentStore, StoredDoc

if TYPE_CHECKING:
    from collab.metrics import Metrics

from collab.wire import (
    AwarenessEntry,
    DocIndex,
    Limits,
    MalformedInput,
    UpdateInfo,
    encode_awareness,
    framing,
    limits_from,
    scan_awareness,
    scan_state_vector,
    scan_update,
)

log = logging.getLogger("collab.room")


# SyncStep1 makes the server encode a diff of the whole doc: a small burst, then a slow refill.
_SYNC_REQUEST_BURST = 4
_SYNC_REQUEST_REFILL = 2.0  # seconds per token


def _build_doc(
    stored: StoredDoc, uncommitted: list[bytes], limits: Limits, reindex: bool
) -> tuple[Doc[Any], DocIndex | None]:
    doc: Doc[Any] = Doc()
    with doc.transaction(origin="store"):
        if stored.snapshot:
            doc.apply_update(stored.snapshot)
        for _, update in stored.updates:
            doc.apply_update(update)
        for update in uncommitted:
            doc.apply_update(update)
    return doc, DocIndex.from_update(doc.get_update(), limits) if reindex else None


class Room:
    def __init__(self, key: DocKey, store: DocumentStore, settings: Settings) -> None:
        self.key = key
        self.store = store
        self.settings = settings
        self.limits = limits_from(settings)
        self.readonly = is_reserved_doc(key.doc)
        self.doc: Doc[Any] = Doc()
        self.index = DocIndex(self.limits)
        self.presence = Presence()
        self.peers: dict[int, Peer] = {}
        self.generation: str | None = None
        self.failed: BaseException | None = None
        # Emitted updates applied to the Doc but not yet committed, and the local sequence
        # numbers that order the outbox against commits.
        self._uncommitted: list[bytes] = []
        self._uncommitted_bytes = 0
        # Clock units deleted since the last compaction: deleted content stays in the snapshot
        # and the log until compaction drops it, so a large deletion is a reason to compact.
        self._deleted_since_compaction = 0
        self._applied = 0
        self._committed = 0
        self._outbox: deque[tuple[int, Callable[[], None]]] = deque()
        self._commit_task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self._captured: list[bytes] = []
        self._heal_task: asyncio.Task[None] | None = None
        self._version = 0  # bumped whenever the Doc changes (cache key for _known_state)
        self._known = KnownState(self.limits)
        self.refused_writes = 0
        self.on_refused_write: Callable[[Room, Peer], None] | None = None
        self._sync_tokens: dict[int, tuple[float, float]] = {}
        self._store_seq = 0
        self._healed = asyncio.Event()
        self._healed.set()
        self.snapshot_bytes = 0
        self.log_rows = 0
        self.log_bytes = 0
        self.refs = 0
        self.metrics: Metrics | None = None  # set by the RoomRegistry

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    async def load(cls, key: DocKey, store: DocumentStore, settings: Settings) -> Room:
        room = cls(key, store, settings)
        stored = await store.load(key)
        await room._rebuild(stored, [])
        return room

    async def _rebuild(
        self, stored: StoredDoc, uncommitted: list[bytes], *, reindex: bool = True
    ) -> None:
        """A fresh Doc (and index) from stored rows plus emitted-but-uncommitted updates.

        Built in a worker thread: a large doc takes a while to apply and index, and a cold
        load or a heal must not stall every other room on the event loop. A heal keeps the
        index: it was only ever committed after successful applies, so it already describes
        exactly what the store and the uncommitted updates hold (minus pending structs).
        """
        doc, index = await anyio.to_thread.run_sync(
            _build_doc, stored, list(uncommitted), self.limits, reindex
        )
        if index is not None:
            self.index = index
        else:
            self.index.drop_pending()
        doc.observe(self._on_emitted)
        self.doc = doc
        self._version += 1
        self.generation = stored.generation
        self._store_seq = stored.last_seq
        self.snapshot_bytes = len(stored.snapshot or b"")
        self.log_rows = len(stored.updates)
        self.log_bytes = stored.log_bytes

    def _on_emitted(self, event: Any) -> None:
        self._captured.append(event.update)

    @property
    def exists(self) -> bool:
        """Whether the doc has ever stored an update (or is about to)."""
        return self.generation is not None or self._applied > 0

    @property
    def size(self) -> int:
        """Stored bytes of this doc, including what awaits commit."""
        return self.snapshot_bytes + self.log_bytes + self._uncommitted_bytes

    @property
    def pending_commit_bytes(self) -> int:
        """Bytes applied to the Doc and waiting for their commit."""
        return self._uncommitted_bytes

    # -- peers -----------------------------------------------------------------------------

    async def join(self, peer: Peer) -> None:
        """Greet a newcomer: our state vector (so it sends what we lack) and who is here."""
        if not self._healed.is_set():
            await self._healed.wait()
        if self.failed is not None:
            raise RoomFailed()
        self.peers[peer.id] = peer
        peer.send(framing.sync_step1(self.doc.get_state()))
        present = self.presence.snapshot()
        if present:
            peer.send(framing.awareness(encode_awareness(present)))

    def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        self._sync_tokens.pop(peer.id, None)
        removed = self.presence.remove_peer(peer.id)
        if removed:
            self._broadcast(framing.awareness(encode_awareness(removed)), exclude=peer.id)

    def _broadcast(self, frame: bytes, exclude: int | None = None) -> None:
        for peer in list(self.peers.values()):
            if peer.id != exclude:
                peer.send(frame)

    def close_all(self, code: int, reason: str) -> None:
        for peer in list(self.peers.values()):
            peer.close(code, reason)

    # -- messages --------------------------------------------------------------------------

    async def handle(self, peer: Peer, frame: bytes) -> None:
        """One frame from a peer. Raises CollabError to have that peer closed."""
        if not self._healed.is_set():
            await self._healed.wait()
        if self.failed is not None:
            raise RoomFailed()
        message = framing.decode_message(frame)
        try:
            if isinstance(message, framing.SyncStep1):
                self._on_sync_step1(peer, message.state_vector)
            elif isinstance(message, framing.SyncStep2 | framing.SyncUpdate):
                self._on_update(peer, message.update)
            elif isinstance(message, framing.Awareness):
                self._on_awareness(peer, message.payload)
            elif isinstance(message, framing.QueryAwareness):
                present = self.presence.snapshot()
                if present:
                    peer.send(framing.awareness(encode_awareness(present)))
            elif isinstance(message, framing.SavedRequest):
                peer.opted_in = True
                counter = message.counter
                self._after_commit(lambda: peer.send(framing.saved(counter)))
        except MalformedInput as exc:
            raise HostileInput(exc.reason) from None

    def _take_sync_token(self, peer: Peer) -> bool:
        loop = asyncio.get_running_loop()
        now = loop.time()
        tokens, stamp = self._sync_tokens.get(peer.id, (float(_SYNC_REQUEST_BURST), now))
        tokens = min(_SYNC_REQUEST_BURST, tokens + (now - stamp) / _SYNC_REQUEST_REFILL)
        if tokens < 1:
            return False
        self._sync_tokens[peer.id] = (tokens - 1, now)
        return True

    def _on_sync_step1(self, peer: Peer, state_vector: bytes) -> None:
        scan_state_vector(state_vector, self.limits)
        if not self._take_sync_token(peer):
            raise Overloaded("too many sync requests")
        # Computed now, sent once the state it contains is committed.
        reply = framing.sync_step2(self.doc.get_update(state_vector))
        self._after_commit(lambda: peer.send(reply))

    def _on_update(self, peer: Peer, update: bytes) -> None:
        info = scan_update(update, self.limits)
        if info.is_empty:
            return
        if self.readonly or peer.readonly:
            self._refuse_write(peer, info)
            return
        if self.size + len(update) > self.settings.max_doc_size:
            raise DocTooLarge()
        delta = self.index.check(info)
        if delta.pending_total > self.settings.max_pending_structs:
            # yrs would keep these forever and retry them on every apply. Close the sender and
            # rebuild the Doc from the store, which holds only integrated (emitted) updates:
            # that drops whatever pending state earlier updates left behind.
            self._schedule_heal()
            raise Overloaded("too many updates with missing dependencies")
        emitted = self._apply(peer, update)
        self.index.commit(delta)
        self._deleted_since_compaction += sum(length for _, _, length in info.deletes)
        for update_out in emitted:
            self._uncommitted.append(update_out)
            self._uncommitted_bytes += len(update_out)
            self._applied += 1
            relay = functools.partial(self._broadcast, framing.sync_update(update_out), peer.id)
            self._outbox.append((self._applied, relay))
        if emitted:
            self._kick_commit()

    def _refuse_write(self, peer: Peer, info: UpdateInfo) -> None:
        """Read-only peers are never closed for writing.

        An update that adds nothing (an echo of what we sent; pycrdt's Provider echoes every
        remote update) is dropped silently; any other gets one permission-denied per socket.
        """
        if self._known.adds_nothing(self.doc, self._version, info):
            return
        self.refused_writes += 1
        if self.metrics is not None:
            self.metrics.refused["readonly"].inc()
        if not peer.denied_once:
            peer.denied_once = True
            peer.send(framing.permission_denied("read-only document"))
            if self.on_refused_write is not None:
                self.on_refused_write(self, peer)

    def _apply(self, peer: Peer, update: bytes) -> list[bytes]:
        self._captured = []
        started = time.perf_counter()
        try:
            with self.doc.transaction(origin=peer.id):
                self.doc.apply_update(update)
            if self.metrics is not None:
                self.metrics.update_apply_seconds.observe(time.perf_counter() - started)
        except BaseException as exc:  # pyo3 PanicException is a BaseException
            if must_propagate(exc):
                raise
            self._captured = []
            log.warning(
                "update from peer %s refused by yrs in %s: %r",
                peer.id,
                self.key,
                exc,
                extra={**logs.doc_fields(self.key), "peer": peer.id},
            )
            self._schedule_heal()
            raise HostileInput("update rejected") from None
        emitted, self._captured = self._captured, []
        if emitted:
            self._version += 1
        return emitted

    def _schedule_heal(self) -> None:
        """Rebuild the Doc from the store: yrs may have left it half-applied or poisoned.

        Other peers' messages wait (``handle`` awaits ``_healed``) rather than fail.
        """
        if self._healed.is_set():
            self._healed.clear()
            self._heal_task = asyncio.get_running_loop().create_task(
                self._heal(), context=logs.detached()
            )

    async def _heal(self) -> None:
        try:
            await self.flush()
            stored = await self.store.load(self.key)
            await self._rebuild(stored, list(self._uncommitted), reindex=False)
            log.warning("rebuilt %s from the store", self.key, extra=logs.doc_fields(self.key))
        except BaseException as exc:
            if must_propagate(exc):
                raise
            log.exception("could not rebuild %s", self.key, extra=logs.doc_fields(self.key))
            self._fail(exc)
        finally:
            self._healed.set()

    def _on_awareness(self, peer: Peer, payload: bytes) -> None:
        entries = scan_awareness(payload, self.limits)  # garbage closes the sender, always
        bucket = peer.awareness_bucket
        if bucket is None:
            bucket = peer.awareness_bucket = Bucket(
                self.settings.awareness_per_second, self.settings.awareness_burst
            )
        if not peer.awareness_pending and bucket.try_take():
            self._apply_awareness(peer, entries)
            return
        # Over its awareness rate: keep only each client's latest state (every message is a
        # whole state) and send it once the budget allows.
        for entry in entries:
            peer.awareness_pending[entry.client] = entry
        if not peer.awareness_flush_scheduled:
            peer.awareness_flush_scheduled = True
            asyncio.get_running_loop().call_later(
                bucket.wait_for(), self._flush_awareness, peer
            )

    def _flush_awareness(self, peer: Peer) -> None:
        peer.awareness_flush_scheduled = False
        if peer.id not in self.peers or not peer.awareness_pending:
            peer.awareness_pending.clear()
            return
        bucket = peer.awareness_bucket
        assert bucket is not None
        if not bucket.try_take():
            peer.awareness_flush_scheduled = True
            asyncio.get_running_loop().call_later(
                bucket.wait_for(), self._flush_awareness, peer
            )
            return
        entries = list(peer.awareness_pending.values())
        peer.awareness_pending.clear()
        self._apply_awareness(peer, entries)

    def _apply_awareness(self, peer: Peer, entries: list[AwarenessEntry]) -> None:
        # Presence belongs to users: a user's reconnecting tab takes its client id over.
        owner = peer.principal.user_id if peer.principal else f"peer:{peer.id}"
        changed = self.presence.apply(peer.id, owner, entries)
        for entry in changed:
            if entry.state is not None:
                peer.awareness_clients.add(entry.client)
        if changed:
            self._broadcast(framing.awareness(encode_awareness(changed)), exclude=peer.id)

    # -- commits ---------------------------------------------------------------------------

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once everything applied so far is committed."""
        if self._committed >= self._applied:
            action()
        else:
            self._outbox.append((self._applied, action))

    def _kick_commit(self) -> None:
        if self._commit_task is None:
            self._drained.clear()
            # No socket's log fields: the loop commits every peer's updates.
            self._commit_task = asyncio.get_running_loop().create_task(
                self._commit_loop(), context=logs.detached()
            )

    async def _commit_loop(self) -> None:
        try:
            while self._uncommitted:
                batch, upto = list(self._uncommitted), self._applied
                started = time.perf_counter()
                self._store_seq = await self.store.append(self.key, batch)
                if self.metrics is not None:
                    self.metrics.store_commit_seconds.observe(time.perf_counter() - started)
                if self.generation is None:
                    # The first commit created the doc: learn its generation (?gen= checks).
                    self.generation = (await self.store.load(self.key)).generation
                del self._uncommitted[: len(batch)]
                batch_bytes = sum(len(u) for u in batch)
                self._uncommitted_bytes -= batch_bytes
                self.log_rows += len(batch)
                self.log_bytes += batch_bytes
                self._committed = upto
                while self._outbox and self._outbox[0][0] <= upto:
                    _, action = self._outbox.popleft()
                    action()
                if self._should_compact():
                    await self.compact()
        except BaseException as exc:
            if must_propagate(exc):
                raise
            log.exception("commit failed for %s", self.key, extra=logs.doc_fields(self.key))
            self._fail(exc)
        finally:
            self._commit_task = None
            self._drained.set()

    def _fail(self, exc: BaseException) -> None:
        """The doc can no longer promise durability: close its peers; the registry drops it."""
        self.failed = exc
        self._outbox.clear()
        self.close_all(1011, "document unavailable")

    def _should_compact(self) -> bool:
        s = self.settings
        threshold = max(s.compact_bytes, self.snapshot_bytes)
        return (
            self.log_rows >= s.compact_rows
            or self.log_bytes > threshold
            or self._deleted_since_compaction > threshold // 2
        )

    async def compact(self) -> None:
        """Fold the log into a GC'd snapshot of the live Doc, in one store transaction.

        The snapshot may already contain applied-but-uncommitted updates: writing them early is
        harmless (they were validated and applied; their own rows follow with higher seqs and
        re-apply as no-ops), and it lets compaction keep up under sustained write load.
        """
        if self.log_rows == 0 or self.failed is not None:
            return
        # Snapshot, seq and counters are read together, with no await in between.
        snapshot = self.doc.get_update()
        upto, rows, nbytes = self._store_seq, self.log_rows, self.log_bytes
        self._deleted_since_compaction = 0
        started = time.perf_counter()
        await self.store.compact(self.key, snapshot, upto)
        if self.metrics is not None:
            self.metrics.compactions.inc()
            self.metrics.compaction_seconds.observe(time.perf_counter() - started)
        self.snapshot_bytes = len(snapshot)
        self.log_rows -= rows
        self.log_bytes -= nbytes

    async def flush(self) -> None:
        """Wait until everything applied so far is committed."""
        while self._commit_task is not None:
            await self._drained.wait()
