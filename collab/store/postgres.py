"""PostgreSQL DocumentStore: SQLite's log and snapshot, shared by every node of a cluster.

The tables are SQLite's (``migrations/postgresql/0001_documents.sql``); what changes is that
several nodes write at once, so every guarantee comes from PostgreSQL's row locks and
snapshots instead of one writer:

- **Appends** are group-committed per node as on SQLite: appends that arrive while a commit is
  in flight queue up and the next holder of the lock writes them all in one statement, its
  own transaction (one round trip: no BEGIN, no COMMIT). The statement first upserts each doc
  of the batch, raising its ``last_seq`` by the number of rows it brings (``INSERT ... ON
  CONFLICT DO UPDATE ... RETURNING last_seq``), then inserts the rows numbered from that head:
  the upsert takes the doc's row lock, held until the commit, so no other node can number rows
  of that doc in between, and a failed batch gives its numbers back. Seqs are gapless per doc
  across nodes. The docs of a batch are locked in one total order (Python's order of (room,
  doc) keys, the same on every node), so two nodes' batches never deadlock.
- **An append naming a generation** (a doc its node loaded) is written only if the doc's row,
  once locked in that same statement, still has it: a doc deleted or re-created through
  another node is neither brought back nor given the old doc's updates, and only the jobs of
  that doc fail (``GenerationGone``); the batch's other docs commit.
- **A first update under ``max_docs_per_room``** (an append that may create its doc) is its
  own transaction, outside the group commit: it takes the room's new-docs advisory lock, which
  new doc metadata takes too (``collab.names.new_docs_key``), counts the room's docs, stored
  and described, and runs the append's statement, which creates the doc with its rows. Nodes
  creating docs at once thus count one after the other, and a failed first update (refused,
  or its connection lost) leaves no empty doc behind.
- **Loads** read the doc's row and its log in one REPEATABLE READ transaction (one snapshot):
  a compaction committing between the two reads cannot make the log start after the snapshot
  the loader read.
- **Compaction** is conditional: it replaces the snapshot only if the stored one folded no
  more (``snapshot_seq <= upto``), the doc still has the rows it folded (``last_seq >= upto``)
  and, when the caller names it, the doc is still the generation the snapshot was taken from
  (not deleted and re-created meanwhile); then it deletes exactly the rows ``<= upto``.
  Racing compactions serialise on the row lock (the loser re-reads the row before deciding),
  and one that folded less than the stored snapshot changes nothing: none loses a row another
  folded.

Every statement names its doc's row first (append, compaction and deletion all lock ``docs``
before touching ``doc_updates``), which is what keeps them deadlock-free between themselves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from collab.db.errors import StoreError
from collab.db.postgres import PgDatabase
from collab.names import DocKey, new_docs_key
from collab.store.base import DocInfo, GenerationGone, StoredDoc, doc_limit

Conn = AsyncConnection[TupleRow]

# The meta store's serial writes take the same lock (``collab.meta.postgres``: the key's hash).
_NEW_DOCS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# The names the room's doc cap counts: its docs stored, and described (``doc_meta``).
_ROOM_DOCS = (
    "SELECT name FROM docs WHERE room = %s UNION SELECT name FROM doc_meta WHERE room_id = %s"
)


@dataclass
class _Append:
    key: DocKey
    updates: Sequence[bytes]
    generation: str | None  # the one the doc must have (None: create it, or merge)
    future: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PostgresStore:
    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self.url = url
        self._db = PgDatabase(url, max_size=max_connections)
        self._queue: list[_Append] = []
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        async with self._write_lock:  # the commit in flight ends first
            await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()

    def pool_stats(self) -> dict[str, int]:
        return self._db.pool_stats()

    async def load(self, key: DocKey) -> StoredDoc:
        async with self._db.transaction("REPEATABLE READ") as conn:
            row = await _read_doc(conn, key, with_snapshot_after=-1)
            if row is None:
                return StoredDoc()
            generation, snapshot, snapshot_seq = row
            return StoredDoc(
                generation, snapshot, snapshot_seq, await _read_log(conn, key, snapshot_seq)
            )

    async def updates_after(self, key: DocKey, seq: int) -> StoredDoc:
        async with self._db.transaction("REPEATABLE READ") as conn:
            row = await _read_doc(conn, key, with_snapshot_after=seq)
            if row is None:
                return StoredDoc()
            generation, snapshot, snapshot_seq = row  # snapshot None unless it is needed
            since = snapshot_seq if snapshot_seq > seq else seq
            return StoredDoc(generation, snapshot, snapshot_seq, await _read_log(conn, key, since))

    async def append(
        self,
        key: DocKey,
        updates: Sequence[bytes],
        *,
        generation: str | None = None,
        max_docs: int | None = None,
    ) -> int:
        if generation is None and max_docs is not None:
            return await self._first_append(_Append(key, updates, None), max_docs)
        job = _Append(key, updates, generation)
        self._queue.append(job)
        async with self._write_lock:
            if not job.future.done():
                batch, self._queue = self._queue, []
                try:
                    async with self._db.autocommit() as conn:
                        for statement in _statements(batch):
                            results = await _write_batch(conn, statement)
                            for other, result in zip(statement, results, strict=True):
                                if isinstance(result, GenerationGone):
                                    other.future.set_exception(result)
                                else:
                                    other.future.set_result(result)
                except BaseException as exc:
                    for other in batch:
                        if not other.future.done():
                            other.future.set_exception(StoreError(f"commit failed: {exc!r}"))
                    if not isinstance(exc, Exception):
                        raise
        return job.future.result()

    async def _first_append(self, job: _Append, max_docs: int) -> int:
        """An append that may create ``job``'s doc, in one transaction under the room's new-docs
        lock (which new doc metadata takes too, on every node): LimitReached unless the doc is
        stored or described already, or the room's docs are fewer than ``max_docs``; then the
        append's statement, which creates the doc (or merges into it, another node's). Nothing
        of it stays if anything fails: no empty doc counts against the cap."""
        key = job.key
        async with self._db.transaction("READ COMMITTED") as conn:
            await conn.execute(_NEW_DOCS_LOCK, (new_docs_key(key.room),))
            # READ COMMITTED: this statement sees what the lock's previous holder committed.
            cur = await conn.execute(_ROOM_DOCS, (key.room, key.room))
            names = {str(name) for (name,) in await cur.fetchall()}
            if key.doc not in names and len(names) >= max_docs:
                raise doc_limit()
            (last,) = await _write_batch(conn, [job])
        if isinstance(last, GenerationGone):  # never: no generation was expected
            raise last
        return last

    async def compact(
        self, key: DocKey, snapshot: bytes, upto_seq: int, generation: str | None = None
    ) -> None:
        async with self._db.transaction() as conn:
            moved = await conn.execute(
                "UPDATE docs SET snapshot = %s, snapshot_seq = %s"
                " WHERE room = %s AND name = %s AND snapshot_seq <= %s AND last_seq >= %s"
                " AND (%s::text IS NULL OR generation = %s)",
                (snapshot, upto_seq, *key, upto_seq, upto_seq, generation, generation),
            )
            if moved.rowcount:
                await conn.execute(
                    "DELETE FROM doc_updates WHERE room = %s AND name = %s AND seq <= %s",
                    (*key, upto_seq),
                )

    async def list_docs(self, room: str) -> list[DocInfo]:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT d.name, d.generation, d.last_seq, COALESCE(length(d.snapshot), 0)"
                " + COALESCE((SELECT sum(length(u.data)) FROM doc_updates u"
                " WHERE u.room = d.room AND u.name = d.name AND u.seq > d.snapshot_seq), 0)"
                ' FROM docs d WHERE d.room = %s ORDER BY d.name COLLATE "C"',
                (room,),
            )
            rows = await cur.fetchall()
        return [DocInfo(name, gen, int(size), seq) for name, gen, seq, size in rows]

    async def count_docs(self, room: str) -> int:
        async with self._db.transaction() as conn:
            cur = await conn.execute("SELECT count(*) FROM docs WHERE room = %s", (room,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def delete_doc(self, key: DocKey) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM docs WHERE room = %s AND name = %s", key)
            await conn.execute("DELETE FROM doc_updates WHERE room = %s AND name = %s", key)


async def _read_doc(
    conn: Conn, key: DocKey, *, with_snapshot_after: int
) -> tuple[str, bytes | None, int] | None:
    """The doc's generation, snapshot (only if it covers more than ``with_snapshot_after``:
    a range read skips the bytes it will not use) and snapshot_seq; None if no such doc."""
    cur = await conn.execute(
        "SELECT generation, CASE WHEN snapshot_seq > %s THEN snapshot END, snapshot_seq"
        " FROM docs WHERE room = %s AND name = %s",
        (with_snapshot_after, *key),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return row[0], row[1], row[2]


async def _read_log(conn: Conn, key: DocKey, after: int) -> list[tuple[int, bytes]]:
    """The doc's log rows with seq > ``after``, in order."""
    cur = await conn.execute(
        "SELECT seq, data FROM doc_updates WHERE room = %s AND name = %s AND seq > %s ORDER BY seq",
        (*key, after),
    )
    return [(seq, bytes(data)) for seq, data in await cur.fetchall()]


# One statement, so one round trip in autocommit (no BEGIN, no COMMIT). The upsert takes the
# batch's docs one by one in key order (the source is sorted before anything is locked, then
# read row by row): it locks the doc's row if there is one (``FOR UPDATE``: a doc deleted by a
# transaction that committed meanwhile is then not returned, one updated is read as it is
# now), and numbers its rows unless the job expected another generation than the locked row
# has (or the doc is gone): such a doc is neither created nor touched. Each doc's row lock is
# held until the commit, and taken in the one order, so no other node numbers rows of that doc
# in between and two batches never deadlock. The insert places every update of a written doc
# at its doc's head before the batch plus its place in the doc's part of the batch. The
# answer, one row per doc: its head (NULL: not written) and the generation the statement's
# snapshot saw (what a doc not written turned into: None if it was deleted).
_APPEND = (
    "WITH t AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
    " %s::bigint[]) WITH ORDINALITY AS t(room, name, generation, expected, n, i)),"
    " heads AS (INSERT INTO docs AS d (room, name, generation, created_at, last_seq)"
    " SELECT t.room, t.name, t.generation, %s, t.n FROM (SELECT * FROM t ORDER BY t.i) t"
    " LEFT JOIN LATERAL (SELECT l.generation FROM docs l"
    " WHERE l.room = t.room AND l.name = t.name FOR UPDATE) l ON true"
    " WHERE t.expected IS NULL OR l.generation = t.expected"
    " ON CONFLICT (room, name) DO UPDATE SET last_seq = d.last_seq + excluded.last_seq"
    " RETURNING d.room, d.name, d.last_seq),"
    " added AS (INSERT INTO doc_updates (room, name, seq, data)"
    " SELECT u.room, u.name, h.last_seq - u.total + u.k, u.data"
    " FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bytea[])"
    " AS u(room, name, k, total, data)"
    " JOIN heads h ON h.room = u.room AND h.name = u.name RETURNING 1)"
    " SELECT t.room, t.name, h.last_seq,"
    " (SELECT s.generation FROM docs s WHERE s.room = t.room AND s.name = t.name),"
    " (SELECT count(*) FROM added)"
    " FROM t LEFT JOIN heads h ON h.room = t.room AND h.name = t.name ORDER BY t.i"
)


def _statements(batch: list[_Append]) -> list[list[_Append]]:
    """The batch as statements in which each doc has one expected generation (nearly always
    one statement; two jobs of one doc expecting different ones, a copy of the doc dropped and
    reloaded meanwhile, go to successive statements). Each doc's jobs keep their order."""
    statements: list[list[_Append]] = [[]]
    expected: dict[DocKey, str | None] = {}
    for job in batch:
        if expected.get(job.key, job.generation) != job.generation:
            statements.append([])
            expected = {}
        expected[job.key] = job.generation
        statements[-1].append(job)
    return statements


async def _write_batch(conn: Conn, batch: list[_Append]) -> list[int | GenerationGone]:
    """Number and insert every job's updates in one statement (``_APPEND``, its own
    transaction); in batch order, the last seq of each job, or the GenerationGone of a job
    whose doc is not the generation it expected (nothing of that doc written)."""
    counts: dict[DocKey, int] = {}
    expected: dict[DocKey, str | None] = {}
    for job in batch:
        counts[job.key] = counts.get(job.key, 0) + len(job.updates)
        expected[job.key] = job.generation  # one per doc in a statement (``_statements``)
    keys = sorted(counts)  # the lock order, the same on every node
    rooms: list[str] = []
    names: list[str] = []
    places: list[int] = []  # 1-based, within the doc's part of the batch
    totals: list[int] = []
    datas: list[bytes] = []
    placed = dict.fromkeys(keys, 0)
    ends: list[int] = []  # each job's last place in its doc's part
    for job in batch:
        for update in job.updates:
            placed[job.key] += 1
            rooms.append(job.key.room)
            names.append(job.key.doc)
            places.append(placed[job.key])
            totals.append(counts[job.key])
            datas.append(bytes(update))
        ends.append(placed[job.key])
    cur = await conn.execute(
        _APPEND,
        (
            [k.room for k in keys],
            [k.doc for k in keys],
            [uuid.uuid4().hex for _ in keys],
            [expected[k] for k in keys],
            [counts[k] for k in keys],
            time.time(),
            rooms,
            names,
            places,
            totals,
            datas,
        ),
    )
    heads = _heads(await cur.fetchall(), counts, expected)
    return [
        head if isinstance(head, GenerationGone) else head + end
        for head, end in zip((heads[job.key] for job in batch), ends, strict=True)
    ]


def _heads(
    rows: list[TupleRow], counts: dict[DocKey, int], expected: dict[DocKey, str | None]
) -> dict[DocKey, int | GenerationGone]:
    """Each doc's head before the batch, or why it was not written; StoreError unless every
    doc has its answer and the rows inserted are exactly those of the docs written."""
    heads: dict[DocKey, int | GenerationGone] = {}
    written = 0
    added = int(rows[0][4]) if rows else 0
    for room, name, last, current, _ in rows:
        key = DocKey(room, name)
        wanted = expected[key]
        if last is not None:
            heads[key] = int(last) - counts[key]
            written += counts[key]
        elif wanted is not None:  # seen as ``wanted``: deleted once the statement began
            heads[key] = GenerationGone(key, wanted, None if current == wanted else current)
    if len(heads) != len(counts) or added != written:
        raise StoreError(f"append numbered {len(heads)} docs and {added} rows")
    return heads
