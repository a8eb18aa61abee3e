"""Rebuild the index from the records of truth: the messages table and the stored docs.

Run by ``collab search reindex``, and by the server in the background when it opens an index
that is new, was never completely built, or was not closed cleanly (a crash may have lost the
last queued writes). It goes through the live feed's own ``Indexer``, and every write is
versioned (``collab.search.index``), so it runs alongside live indexing, in another process
too, without either undoing the other: a stale write of one is refused by the newer one.

For each room (in id order): every message, live or archived, deleted ones as tombstones;
a message the index holds but the table no longer does (the room was deleted, its drop lost
to a crash, and its id taken again) is tombstoned; every stored doc, read and extracted like
after a commit; a doc the index holds but the store no longer does is tombstoned. Rooms the
index held when the rebuild started that no longer exist are dropped. Then the index is
marked complete. Each page of messages is stamped with when its read began (``Entry.seen``):
a page read after a room's drop is the room made again under that id, and is kept.

``refill_room`` is one room's part of it, run after the room's drop (``Search.drop_room``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from collab.meta import MetaStore
from collab.names import DocKey, is_reserved_doc
from collab.search.index import DELETED, Drop, Entry
from collab.search.indexer import Indexer, doc_tombstone
from collab.store.base import DocumentStore

log = logging.getLogger("collab.search")

PAGE = 500


@dataclass
class RebuildReport:
    rooms: int = 0
    messages: int = 0
    docs: int = 0
    dropped_rooms: int = 0
    seconds: float = 0.0


async def rebuild(
    indexer: Indexer,
    meta: MetaStore,
    store: DocumentStore,
    *,
    progress: Callable[[RebuildReport], None] | None = None,
) -> RebuildReport:
    report = RebuildReport()
    started = time.monotonic()
    index = indexer.index
    await index.set_complete(False)
    at_start = indexer.now()
    held = set(await index.rooms())
    existing: set[str] = set()
    after = ""
    while ids := await meta.list_room_ids(after=after, limit=PAGE):
        for room_id in ids:
            existing.add(room_id)
            await _room(indexer, meta, store, room_id, report)
            report.rooms += 1
            if progress is not None:
                progress(report)
        after = ids[-1]
    gone = sorted(held - existing)
    for room_id in gone:
        indexer.enqueue([Drop(room_id, at_start)])
    report.dropped_rooms = len(gone)
    await indexer.flush()
    if not indexer.failed:
        await index.set_complete(True)
    report.seconds = time.monotonic() - started
    log.info(
        "search index rebuilt: %d rooms, %d messages, %d docs in %.1fs",
        report.rooms,
        report.messages,
        report.docs,
        report.seconds,
    )
    return report


async def refill_room(
    indexer: Indexer, meta: MetaStore, store: DocumentStore, room_id: str
) -> None:
    """Index the room as the tables and the store hold it now, after its drop: nothing when
    the room is gone; when its id was taken again before the drop reached the index, the new
    room's messages (refused by the drop by their posting time otherwise, until a ``reindex
    --fresh``) and docs (their re-index cancelled by the drop)."""
    await _room(indexer, meta, store, room_id, RebuildReport())
    await indexer.flush()


async def _room(
    indexer: Indexer, meta: MetaStore, store: DocumentStore, room_id: str, report: RebuildReport
) -> None:
    seq = 0
    while True:
        # Stamped with when its read began: read after the room's drop (a room made again
        # under a dropped id), a page is the new room's and the drop does not refuse it.
        seen = indexer.now()
        rows = await meta.list_messages(room_id, after_seq=seq, limit=PAGE)
        if not rows:
            break
        await indexer.messages_written(room_id, rows, seen=seen)
        report.messages += len(rows)
        seq = rows[-1].seq
    await _forget_gone_messages(indexer, meta, room_id)
    listed_at = indexer.now()
    names = {info.name for info in await store.list_docs(room_id)}
    names = {name for name in names if not is_reserved_doc(name)}
    for name in sorted(names):
        await indexer.reindex_doc(DocKey(room_id, name))
        report.docs += 1
    stale = set(await indexer.index.doc_names(room_id)) - names
    indexer.enqueue([doc_tombstone(DocKey(room_id, name), listed_at) for name in sorted(stale)])


async def _forget_gone_messages(indexer: Indexer, meta: MetaStore, room_id: str) -> None:
    """Tombstone the room's indexed messages that the table no longer holds, a page at a time.

    An entry whose seq holds another message in the table (or none) is gone only if its id is
    not in the table now: one posted after the table was read is there, since the index is
    written only after its row is durable."""
    after = 0
    while page := await indexer.index.messages(room_id, after, PAGE):
        after = page[-1][0]
        table = await _ids_by_seq(meta, room_id, {seq for _, seq, _ in page})
        at = indexer.now()
        gone = [
            Entry("chat", room_id, key, "", at=at, version=DELETED, deleted=True)
            for _, seq, key in page
            if table.get(seq) != key and await meta.get_message(room_id, key) is None
        ]
        indexer.enqueue(gone)


async def _ids_by_seq(meta: MetaStore, room_id: str, seqs: set[int]) -> dict[int, str]:
    """The table's message id at each of ``seqs`` (read in pages over their range)."""
    found: dict[int, str] = {}
    seq, last = min(seqs) - 1, max(seqs)
    while seq < last and (rows := await meta.list_messages(room_id, after_seq=seq, limit=PAGE)):
        found.update((row.seq, row.id) for row in rows if row.seq in seqs)
        seq = rows[-1].seq
    return found
