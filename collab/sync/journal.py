"""A document's journal: what is stored, what awaits its commit, and when to compact.

Updates the replica emitted are ``record``-ed with increasing sequence numbers; one commit task
per doc appends everything recorded so far in a single store transaction (group commit), then
reports ``on_committed(upto)`` so the live doc releases what waited for that state. A failed
commit reports ``on_failed(exc)`` and records nothing more: the doc can no longer promise
durability. After a commit the compaction policy may fold the log into a GC'd snapshot; a
compaction that fails is logged and tried again later, never a failure of the doc.

With several nodes on one store, other nodes append to the same doc: ``held`` says which of
the doc's sequence numbers the replica holds (our commits, as the store numbers them, and the
remote updates the live doc applied, ``note_remote``), and compaction folds only up to the
first hole, conditionally on the stored snapshot being older and of the same generation.
Every commit names the generation the doc was loaded as (or that its first commit created):
if another node deleted or re-created the doc meanwhile, the store writes nothing and raises
``GenerationGone``; the journal tells ``on_gone`` (the doc's sockets close 4404 / 4409, as when
the other node's notice arrives first), then ``on_failed``: nothing of that commit is
acknowledged or relayed, and the doc is not brought back by the updates of a client that had
not heard of the delete yet.

The store only ever receives updates the Doc emitted, never raw client bytes, so rebuilding a
Doc from the store plus ``uncommitted`` heals whatever yrs left half-applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from collab import logs
from collab.errors import LimitReached, close_code_for, must_propagate
from collab.names import DocKey, is_reserved_doc
from collab.settings import Settings
from collab.store.base import DocumentStore, GenerationGone, StoredDoc
from collab.sync.hooks import SyncHooks
from collab.sync.seqs import SeqSet

log = logging.getLogger("collab.sync.journal")

COMPACT_RETRY_S = 30.0  # after a failed compaction, the policy waits this long to try again


def failure_close(exc: BaseException) -> tuple[int, str]:
    """How a doc's peers are closed when it failed: a first update past the room's doc cap
    as the join's check refuses (4403); anything else 1011, the doc being unavailable."""
    if isinstance(exc, LimitReached):
        return close_code_for(exc)
    return 1011, "document unavailable"


class Journal:
    def __init__(
        self,
        key: DocKey,
        store: DocumentStore,
        settings: Settings,
        *,
        snapshot: Callable[[], bytes],
        on_committed: Callable[[int], None],
        on_failed: Callable[[BaseException], None],
        hooks: SyncHooks,
    ) -> None:
        self.key = key
        self.store = store
        self.settings = settings
        self._snapshot = snapshot
        self._on_committed = on_committed
        self._on_failed = on_failed
        # Told each commit's first seq and updates (several nodes: publish them).
        self.on_stored: Callable[[int, list[bytes]], None] | None = None
        # Told the generation the store holds (None: deleted) when it refused a commit for
        # ours (several nodes: close the sockets 4404 / 4409, forget the doc); before on_failed.
        self.on_gone: Callable[[str | None], None] | None = None
        self._hooks = hooks
        self.generation: str | None = None
        self.held = SeqSet()  # the store's seqs the replica holds
        self.snapshot_bytes = 0
        self.log_rows = 0
        self.log_bytes = 0
        self.uncommitted: list[bytes] = []
        self.uncommitted_bytes = 0
        # Clock units deleted since the last compaction: deleted content stays in the snapshot
        # and the log until compaction drops it, so a large deletion is a reason to compact.
        self.deleted_since_compaction = 0
        self.recorded = 0  # sequence number of the last recorded update
        self.committed = 0  # ... and of the last committed one
        self.halted = False
        # The commit task while one runs; ``flush`` waits on it (no Event: one per loaded doc
        # costs 0.9 KB, and this is the only thing it would say).
        self._task: asyncio.Task[None] | None = None
        self._compacting = False
        self._compaction: asyncio.Task[None] | None = None  # one started by remote rows
        self._compact_not_before = 0.0  # monotonic time: a failed compaction waits

    @property
    def store_seq(self) -> int:
        """Every stored update up to this seq is in the replica."""
        return self.held.head

    def adopt(self, stored: StoredDoc) -> None:
        """Take the store's facts from a (re)load. GenerationGone if the doc had a generation
        and the store now holds another one or none (a rebuild of a doc deleted or re-created
        through another node): what it held must not be carried into its successor."""
        if self.generation is not None and stored.generation != self.generation:
            self._gone(GenerationGone(self.key, self.generation, stored.generation))
        self.generation = stored.generation
        self.held.reset(stored.last_seq)
        self.snapshot_bytes = len(stored.snapshot or b"")
        self.log_rows = len(stored.updates)
        self.log_bytes = stored.log_bytes

    @property
    def exists(self) -> bool:
        """Whether the doc has ever stored an update (or is about to)."""
        return self.generation is not None or self.recorded > 0

    @property
    def size(self) -> int:
        """Stored bytes of the doc, including what awaits commit."""
        return self.snapshot_bytes + self.log_bytes + self.uncommitted_bytes

    def record(self, updates: list[bytes], deleted: int) -> int:
        """Queue emitted updates for the next group commit; the sequence number they reach."""
        self.deleted_since_compaction += deleted
        for update in updates:
            self.uncommitted.append(update)
            self.uncommitted_bytes += len(update)
            self.recorded += 1
        if updates and self._task is None:
            # No socket's log fields: the loop commits every peer's updates.
            self._task = asyncio.get_running_loop().create_task(
                self._commit_loop(), context=logs.detached()
            )
        return self.recorded

    def halt(self) -> None:
        """No more compactions (the doc failed or is being deleted); commits in flight end."""
        self.halted = True

    async def _commit_loop(self) -> None:
        try:
            while self.uncommitted:
                await self._commit_batch()
                if self.should_compact():
                    await self._compact_logged()
        except BaseException as exc:
            if must_propagate(exc):
                raise
            self.halted = True
            if isinstance(exc, GenerationGone):
                self._tell_gone(exc)
            elif isinstance(exc, LimitReached):  # a first update past the room's doc cap
                log.info("%s: %s", self.key, exc, extra=logs.doc_fields(self.key))
            else:
                log.exception("commit failed for %s", self.key, extra=logs.doc_fields(self.key))
            self._on_failed(exc)
        finally:
            self._task = None

    def _gone(self, exc: GenerationGone) -> None:
        """Halt, tell ``on_gone``, and raise ``exc`` (for a caller that fails the doc)."""
        self.halted = True
        self._tell_gone(exc)
        raise exc

    def _tell_gone(self, exc: GenerationGone) -> None:
        log.info("%s", exc, extra=logs.doc_fields(self.key))
        if self.on_gone is not None:
            self.on_gone(exc.current)

    async def _commit_batch(self) -> None:
        batch, upto = list(self.uncommitted), self.recorded
        started = time.perf_counter()
        # Only into the generation loaded (or created by our first commit): never re-creating
        # a doc deleted meanwhile through another node, nor writing into its successor. A
        # first commit creates the doc within the room's cap, counted in its own step (the
        # join's check alone let docs joined at once through: LimitReached, 4403).
        last = await self.store.append(
            self.key, batch, generation=self.generation, max_docs=self._max_docs()
        )
        self._hooks.committed(time.perf_counter() - started)
        first = last - len(batch) + 1
        self.held.add_range(first, last)
        gone = None
        if self.generation is None:
            gone = await self._learn_generation(first, batch)
        del self.uncommitted[: len(batch)]
        batch_bytes = sum(map(len, batch))
        self.uncommitted_bytes -= batch_bytes
        self.log_rows += len(batch)
        self.log_bytes += batch_bytes
        self.committed = upto
        if self.on_stored is not None:
            self.on_stored(first, batch)
        self._on_committed(upto)
        self._hooks.stored(self.key)
        if gone is not None:  # committed before the doc went: reported, and the end of it
            raise gone

    def _max_docs(self) -> int | None:
        """The cap a commit that may create the doc passes (not the server's reserved docs)."""
        if self.generation is not None or is_reserved_doc(self.key.doc):
            return None
        return self.settings.max_docs_per_room

    async def _learn_generation(self, first: int, batch: list[bytes]) -> GenerationGone | None:
        """The first commit created the doc (or wrote into the one another node created since
        the load): learn its generation (``?gen=`` checks, the next appends), by reading the
        rows just written, so that a doc deleted or re-created in between is not taken for
        ours. That case: the GenerationGone to raise once this commit is reported."""
        stored = await self.store.updates_after(self.key, first - 1)
        rows = [update for _, update in stored.updates[: len(batch)]]
        if stored.generation is not None and (stored.snapshot is not None or rows == batch):
            self.generation = stored.generation
            return None
        return GenerationGone(self.key, None, stored.generation)

    def note_remote(self, nbytes: int, deleted: int) -> None:
        """The live doc applied a row another node stored (already in ``held``): the stored
        log grew, so count it (size quota, compaction policy) and compact when due."""
        self.log_rows += 1
        self.log_bytes += nbytes
        self.deleted_since_compaction += deleted
        if self._task is None and self._compaction is None and self.should_compact():
            self._compaction = asyncio.get_running_loop().create_task(
                self._compact_remote(), context=logs.detached()
            )

    async def _compact_remote(self) -> None:
        try:
            await self._compact_logged()
        finally:
            self._compaction = None

    async def _compact_logged(self) -> None:
        """Compact when the policy says so. A failure (its transaction refused or lost: the
        store keeps the snapshot and the log as they were) costs only the compaction: logged,
        and tried again ``COMPACT_RETRY_S`` later; the commits go on, the doc stays open."""
        try:
            await self.compact()
        except Exception:
            self._compact_not_before = time.monotonic() + COMPACT_RETRY_S
            log.exception("compaction failed for %s", self.key, extra=logs.doc_fields(self.key))

    def should_compact(self) -> bool:
        if self._compact_not_before and time.monotonic() < self._compact_not_before:
            return False
        s = self.settings
        threshold = max(s.compact_bytes, self.snapshot_bytes)
        return (
            self.log_rows >= s.compact_rows
            or self.log_bytes > threshold
            or self.deleted_since_compaction > threshold // 2
        )

    async def compact(self) -> None:
        """Fold the log into a GC'd snapshot of the live Doc, in one store transaction.

        The snapshot may already contain applied-but-uncommitted updates: writing them early is
        harmless (they were validated and applied; their own rows follow with higher seqs and
        re-apply as no-ops), and it lets compaction keep up under sustained write load.
        """
        if self.log_rows == 0 or self.halted or self._compacting:
            return
        # Snapshot, seq and counters are read together, with no await in between. The
        # snapshot may hold more than ``upto`` (rows held past a hole): harmless, as above.
        snapshot = self._snapshot()
        upto, rows, nbytes = self.held.head, self.log_rows, self.log_bytes
        self.deleted_since_compaction = 0
        self._compacting = True
        started = time.perf_counter()
        try:
            await self.store.compact(self.key, snapshot, upto, self.generation)
        finally:
            self._compacting = False
        self._hooks.compacted(time.perf_counter() - started)
        self.snapshot_bytes = len(snapshot)
        self.log_rows -= rows
        self.log_bytes -= nbytes

    async def flush(self) -> None:
        """Wait until everything recorded so far is committed (or the journal failed)."""
        while (task := self._task) is not None:
            # asyncio.wait, not the task itself: a waiter cancelled here leaves it running.
            await asyncio.wait((task,))
