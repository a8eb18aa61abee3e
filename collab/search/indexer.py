"""The live feed into the index: chat rows and doc commits in, versioned writes out.

- **Chat**: ``ChatService`` hands every row it writes (post, edit, delete, reaction) to
  ``messages_written`` (``collab.chat.RowObserver``); the row's state becomes an ``Entry``
  whose version is its last edit (``DELETED`` once deleted).
- **Docs**: every group commit of a shared doc reports ``doc_stored`` (``SyncHooks.stored``);
  ``delay`` seconds after the first commit of a burst (later commits of the burst wait for the
  same run) the doc is read from the store and its text extracted on a worker thread
  (``collab.search.extract``), one doc at a time (the read too). While the doc's walk is
  kept (``SCANS_KEPT`` docs, with the pycrdt Doc they built up to ``KEEP_DOC_BYTES``), a
  re-index reads and applies only the rows appended since the last one; its text is still
  walked whole, so a doc that keeps changing is re-indexed at most every ``SUSTAINED`` x ``delay``
  (5 s by default): a commit after a quiet spell is found within ``delay``, one in the middle
  of a typing session within that interval. A doc whose extraction took long waits longer
  still (at most a fifth of a thread's time goes to any one doc).
- **Deletions** (``drop_doc``, ``drop_room``) are written before the API answers. The API
  drops after deleting from the store and the tables, so a doc or room made again under the
  same name in between is read again after its drop (``drop_doc`` re-indexes the doc;
  ``Search.drop_room`` refills the room, ``collab.search.rebuild.refill_room``).

One writer task applies what is queued in batches, one short transaction each, off the event
loop; whatever arrives meanwhile makes the next batch (group commit without a timer). A batch
that fails (its PostgreSQL session killed by a restart or failover) is applied again, with
backoff, for ``RETRY_SECONDS``: its writes are versioned, so repeating them is safe; only then
is it given up (the index is marked for a rebuild). The queue is bounded: past ``HIGH_WATER``
a chat write waits for the writer to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

from collab import logs
from collab.meta import Message
from collab.names import DocKey, is_reserved_doc
from collab.search.extract import ExtractError, KindScan, doc_text
from collab.search.index import DELETED, Drop, Entry, SearchIndex, Write
from collab.store.base import DocumentStore, StoredDoc
from collab.wire import Limits

log = logging.getLogger("collab.search")

HIGH_WATER = 10_000  # queued writes past which chat writers wait
BATCH = 2_000  # writes per transaction
SLOWDOWN = 4.0  # a doc waits at least this many times its last extraction before the next
SCANS_KEPT = 64  # docs whose bounded walk is kept for the next re-index (collab.search.extract)
SUSTAINED = 5.0  # a doc edited without pause is re-indexed every SUSTAINED x delay at most
RETRY_SECONDS = 30.0  # a failed batch is written again for this long before it is given up


def message_entry(message: Message, read_at: float | None = None) -> Entry:
    """The row's entry; ``seen`` is when the row last changed (its post, edit or deletion:
    a room's drop refuses a row that last changed before it, and takes a later edit of a
    message the room made again posted before the drop) or, later, ``read_at``: when the
    read of the table that returned it began."""
    changed = message.edited_at or message.created_at
    return Entry(
        kind="chat",
        room=message.room_id,
        key=message.id,
        text="" if message.deleted else message.text,
        at=message.created_at,
        version=DELETED if message.deleted else (message.edited_at or message.created_at),
        deleted=message.deleted,
        author=message.author,
        seq=message.seq,
        seen=changed if read_at is None else max(changed, read_at),
    )


def doc_tombstone(key: DocKey, at: float) -> Entry:
    return Entry("doc", key.room, key.doc, "", at=at, version=at, deleted=True)


@dataclass(slots=True)
class _DocJob:
    timer: asyncio.TimerHandle | None = None
    running: bool = False  # due: waiting for its turn or being indexed
    again: bool = False  # committed again while being indexed
    delay: float = 0.0


class Indexer:
    def __init__(
        self,
        index: SearchIndex,
        store: DocumentStore,
        limits: Limits,
        *,
        delay: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.store = store
        self.limits = limits
        self.delay = delay
        self.clock = clock
        self._queue: list[Write] = []
        self._queued = 0  # writes ever queued ...
        self._written = 0  # ... and ever applied (or given up on)
        self._progress = asyncio.Condition()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._docs: dict[DocKey, _DocJob] = {}
        # Due docs in turn, one runner task for all of them (one at a time, as the extraction
        # limiter says anyway): a burst of commits across many docs waits here at a few dozen
        # bytes a doc, not a task each (1.5 KB).
        self._due: deque[tuple[DocKey, _DocJob]] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._resting: dict[DocKey, float] = {}  # re-indexed lately: no run before this time
        self._resting_pruned = 0  # its size after the last prune of ended rests
        self._scans: OrderedDict[DocKey, KindScan] = OrderedDict()  # walks kept, oldest first
        self._extracting = anyio.CapacityLimiter(1)
        self._closing = False
        self.failed = False  # a batch could not be written: the index needs a rebuild
        self._last = 0.0

    def now(self) -> float:
        """The clock, never going back within this process: a doc's version is when it was
        read, and a read after a clock step back must still outrank the one before."""
        self._last = max(self.clock(), self._last + 1e-6)
        return self._last

    def start(self) -> None:
        if self._writer is not None:
            return
        self._writer = asyncio.get_running_loop().create_task(
            self._write_forever(), context=logs.detached()
        )

    async def close(self) -> list[tuple[str, str]]:
        """Stop: write what is queued; the docs still waiting to be re-indexed are returned
        (the index remembers them for the next start)."""
        self._closing = True
        pending: list[tuple[str, str]] = []
        for key, job in list(self._docs.items()):
            if job.timer is not None:
                job.timer.cancel()
            pending.append((key.room, key.doc))
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._due.clear()
        self._docs.clear()
        if self._writer is not None:
            await self.flush()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        return pending

    # -- the queue and its writer ------------------------------------------------------

    def enqueue(self, writes: Sequence[Write]) -> int:
        """Queue versioned writes for the writer task (never waits)."""
        self._queue.extend(writes)
        self._queued += len(writes)
        self._wake.set()
        return self._queued

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        target = self._queued
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                if not await self._apply(batch):
                    log.error("search index write failed: %d writes lost", len(batch))
                    await self._give_up()
                async with self._progress:
                    self._written += len(batch)
                    self._progress.notify_all()

    async def _apply(self, batch: Sequence[Write]) -> bool:
        """Apply ``batch``, again after a failure (a PostgreSQL restart or failover kills the
        session of the batch in flight; a locked SQLite file): versioned writes are safe to
        repeat. False once ``RETRY_SECONDS`` passed, or at the first failure while closing."""
        deadline = time.monotonic() + RETRY_SECONDS
        wait = 0.05
        while True:
            try:
                await self.index.apply(batch)
                return True
            except Exception:
                if self._closing or time.monotonic() + wait > deadline:
                    log.exception("search index write failed")
                    return False
                log.warning("search index write failed; again in %.2fs", wait, exc_info=True)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 2.0)

    async def _give_up(self) -> None:
        """A lost batch: the index no longer matches; the next start rebuilds it."""
        self.failed = True
        try:
            await self.index.set_complete(False)
        except Exception:
            log.exception("could not mark the search index for a rebuild")

    # -- chat --------------------------------------------------------------------------

    async def messages_written(
        self, room_id: str, messages: Sequence[Message], *, seen: float | None = None
    ) -> None:
        """Rows ChatService just wrote (``collab.chat.RowObserver``), or rows a read of the
        table that began at ``seen`` returned (``collab.search.rebuild``)."""
        self.enqueue([message_entry(m, seen) for m in messages])
        if len(self._queue) > HIGH_WATER:
            target = self._queued - HIGH_WATER
            async with self._progress:
                await self._progress.wait_for(lambda: self._written >= target)

    # -- docs --------------------------------------------------------------------------

    def doc_stored(self, key: DocKey) -> None:
        """A group commit of ``key`` returned: re-index it soon (``SyncHooks.stored``)."""
        if is_reserved_doc(key.doc) or self._closing:
            return
        job = self._docs.get(key)
        if job is None:
            job = self._docs[key] = _DocJob(delay=self.delay)
            loop = asyncio.get_running_loop()
            resting = self._resting.pop(key, None)
            if resting is not None:
                job.delay = max(job.delay, resting - loop.time())
        if job.running:
            job.again = True
        elif job.timer is None:
            loop = asyncio.get_running_loop()
            job.timer = loop.call_later(job.delay, self._start, key, job, context=logs.detached())

    def _start(self, key: DocKey, job: _DocJob) -> None:
        job.timer = None
        job.running = True
        self._due.append((key, job))
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run_due())

    async def _run_due(self) -> None:
        try:
            while self._due:
                await self._run(*self._due.popleft())
        finally:
            self._runner = None

    async def _run(self, key: DocKey, job: _DocJob) -> None:
        started = time.monotonic()
        try:
            await self.reindex_doc(key)
        except Exception:
            log.exception("could not re-index %s", key, extra=logs.doc_fields(key))
        job.running = False
        job.delay = max(SUSTAINED * self.delay, SLOWDOWN * (time.monotonic() - started))
        if self._docs.get(key) is not job:
            return
        loop = asyncio.get_running_loop()
        if job.again and not self._closing:
            job.again = False
            job.timer = loop.call_later(job.delay, self._start, key, job, context=logs.detached())
        else:
            del self._docs[key]
            self._resting[key] = loop.time() + job.delay
            self._prune_resting(loop.time())

    def _prune_resting(self, now: float) -> None:
        """Drop ended rests once the dict doubled since the last prune (amortized O(1) a doc;
        a timer per doc to drop its own was 0.4 KB). An ended rest left here is harmless:
        ``doc_stored`` finds it in the past."""
        if len(self._resting) > max(64, 2 * self._resting_pruned):
            self._resting = {k: until for k, until in self._resting.items() if until > now}
            self._resting_pruned = len(self._resting)

    async def reindex_doc(self, key: DocKey) -> None:
        """Read the doc from the store, extract its text off the loop, queue its entry.

        One doc at a time, read included: the store's reader also serves the cold loads of
        joining clients, which must not queue behind a burst of re-indexing.
        """
        async with self._extracting:
            at = self.now()  # before the read: whatever it sees is at least this recent
            scan = self._scans.pop(key, None)
            stored = await self._read(key, scan)
            if not stored.exists:
                self.enqueue([doc_tombstone(key, at)])
                return
            if scan is None or not scan.continues(stored):
                scan = KindScan(self.limits)
            try:
                text = await anyio.to_thread.run_sync(
                    lambda: doc_text(stored, self.limits, scan=scan)
                )
            except ExtractError as exc:
                log.warning("%s is not indexed: %s", key, exc, extra=logs.doc_fields(key))
                self.enqueue([doc_tombstone(key, at)])  # nor found by the text it had
                return
            self._scans[key] = scan
            if len(self._scans) > SCANS_KEPT:
                self._scans.popitem(last=False)
        self.enqueue([Entry("doc", key.room, key.doc, text, at=at, version=at)])

    async def _read(self, key: DocKey, scan: KindScan | None) -> StoredDoc:
        """The doc, or only its rows after those ``scan`` applied to the doc it keeps."""
        if scan is not None and scan.doc is not None:
            newer = await self.store.updates_after(key, scan.last_seq)
            if not newer.exists or scan.continues(newer):
                return newer
        return await self.store.load(key)

    def _forget(self, match: Callable[[DocKey], bool]) -> None:
        for key in [k for k in self._scans if match(k)]:
            del self._scans[key]
        for key, job in list(self._docs.items()):
            if match(key):
                if job.timer is not None:
                    job.timer.cancel()
                del self._docs[key]

    async def drop_doc(self, key: DocKey) -> None:
        """The doc was deleted: its entry goes now (and a read still in flight cannot bring
        it back: it is older than the tombstone). Then it is read once more, as after a
        commit: a doc made again under its name and committed before this drop (its re-index
        cancelled here, or written and now outranked by the tombstone) is found again."""
        self._forget(lambda k: k == key)
        self.enqueue([doc_tombstone(key, self.now())])
        await self.flush()
        self.doc_stored(key)

    async def drop_room(self, room_id: str) -> None:
        """The room was deleted (after its docs): every entry of it goes now."""
        self._forget(lambda k: k.room == room_id)
        self.enqueue([Drop(room_id, self.now())])
        await self.flush()

    def pending_docs(self) -> int:
        return len(self._docs)
