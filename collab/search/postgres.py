"""The PostgreSQL SearchIndex: pg_trgm in the store's own database, one index for every node.

The tables are ``migrations/postgresql/0050_search.sql``'s (``search_put`` is
``0051_search_seen.sql``'s): ``search_entries`` has the columns
of SQLite's ``entries`` (``collab.search.sqlite``) and a GIN trigram index on its text, so a
message posted through one node is found by a search on any other. The SQL of a search is
``collab.search.pgsql``'s.

**Writes from several nodes.** Every ``apply`` is one transaction under a transaction-scoped
advisory lock (``WRITE_LOCK``): batches from all nodes run one at a time, each reading the
rows as the previous batch committed them (READ COMMITTED), so the versioning rules of
``collab.search.index`` hold exactly as on SQLite's single writer: two nodes writing the same
message never both insert it, an older version never overwrites a newer one, and the id
probing (``entry_id`` + 1 until free) never hands one id to two entries. The indexer batches
writes (``collab.search.indexer``), so the lock is taken about once per batch per node. An
entry is written by the migration's SQL function ``search_put``, which applies those rules
(``accepts``, ``keeps_id``, ``entry_id``) on the server: a batch's entries go out as one
pipelined ``executemany``, not four round trips each, so the lock is held briefly.

**Clean or not, with several nodes.** A process that writes the index (a server, ``collab
search reindex``) registers in ``search_writers`` under a session advisory lock it holds on a
connection of its own while it lives, and removes its row when it closes. ``open`` finds the
rows whose lock is free: writers that ended without closing (a crash), whose queued writes may
be lost, so the index is reported not clean (the server rebuilds it). A live node's row is
locked, so a second node starting beside the first does not rebuild. ``complete`` and the
docs left pending by a clean close are shared rows: any node may re-index them (the store is
shared too).

**The deadline.** A search runs with ``statement_timeout`` set to the time left; PostgreSQL
cancels it past that and ``QueryTooSlow`` is raised (a search whose deadline has already
passed raises it without asking the server).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence

import psycopg
import psycopg.errors
from psycopg.rows import TupleRow
from psycopg_pool import PoolTimeout

from collab.db.errors import StoreError
from collab.db.postgres import PgDatabase
from collab.search.index import (
    Counts,
    Drop,
    Entry,
    IndexState,
    Kind,
    Page,
    QueryTooSlow,
    Scope,
    Write,
    written_at,
)
from collab.search.pgsql import run_search
from collab.search.query import Query
from collab.search.snippets import clean_text
from collab.settings import masked

Conn = psycopg.AsyncConnection[TupleRow]

# Advisory locks of the index use the two-int key space (it never overlaps the bigint keys
# other parts of collab lock): class "srch", object 0 for writes, a writer's own key for its
# registration in search_writers.
LOCK_CLASS = 0x73726368
WRITE_LOCK = 0
POOL_SIZE = 4  # searches and writes of one node (a search holds a connection for its query)


def pg_text(text: str) -> str:
    """Text as PostgreSQL stores it: no NUL (``text`` refuses it), no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class PostgresIndex:
    """The index in the PostgreSQL database ``url`` (migrated: ``collab migrate``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = PgDatabase(url, min_size=1, max_size=POOL_SIZE)
        self._holder: Conn | None = None  # holds this writer's registration lock
        self._key: int | None = None

    async def open(self) -> IndexState:
        await self.db.open()
        try:
            holder = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=10, application_name="collab-search"
            )
        except psycopg.Error as exc:
            await self.db.close()
            raise StoreError(f"{masked('store', self.url)}: {exc}") from exc
        try:
            try:
                self._key = await _register(holder)
                clean = await _reap_ended_writers(holder, self._key)
            except psycopg.Error as exc:
                raise StoreError(f"{masked('store', self.url)}: {exc}") from exc
            async with self.db.transaction() as conn:
                state = dict(
                    await (await conn.execute("SELECT key, value FROM search_state")).fetchall()
                )
                cur = await conn.execute("DELETE FROM search_pending_docs RETURNING room, doc")
                pending = sorted((str(room), str(doc)) for room, doc in await cur.fetchall())
        except BaseException:
            await holder.close()
            await self.db.close()
            raise
        self._holder = holder
        return IndexState(
            clean=clean,
            complete=state.get("complete") == "1",
            pending_docs=tuple(pending),
            new="complete" not in state,
        )

    async def close(self, pending_docs: Sequence[tuple[str, str]] = ()) -> None:
        holder, self._holder = self._holder, None
        if holder is None:
            return
        try:
            async with self.db.transaction() as conn:
                if pending_docs:
                    async with conn.cursor() as cur:
                        await cur.executemany(
                            "INSERT INTO search_pending_docs (room, doc) VALUES (%s, %s)"
                            " ON CONFLICT DO NOTHING",
                            list(pending_docs),
                        )
                await conn.execute("DELETE FROM search_writers WHERE lock_key = %s", (self._key,))
        finally:
            await holder.close()  # its session lock goes with it
            await self.db.close()

    async def apply(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, WRITE_LOCK))
            # In order; each run of entries is one executemany (pipelined: one round trip).
            run: list[tuple[object, ...]] = []
            async with conn.cursor() as cur:
                for write in writes:
                    if isinstance(write, Drop):
                        if run:
                            await cur.executemany(_PUT, run)
                            run = []
                        await _drop(conn, write)
                    else:
                        run.append(_put_args(write))
                if run:
                    await cur.executemany(_PUT, run)

    async def search(
        self,
        query: Query,
        scopes: Sequence[Scope],
        *,
        kind: Kind | None = None,
        before: int | None = None,
        limit: int = 20,
        deadline: float | None = None,
    ) -> Page:
        if deadline is not None and time.monotonic() >= deadline:
            raise QueryTooSlow()
        try:
            async with self.db.transaction(wait=_left(deadline)) as conn:
                if deadline is not None:
                    left = _left(deadline)
                    if left is None or left <= 0:
                        raise QueryTooSlow()
                    ms = max(1, math.ceil(left * 1000))
                    await conn.execute(f"SET LOCAL statement_timeout = {ms}")
                return await run_search(conn, query, scopes, kind, before, limit)
        except StoreError as exc:
            # Cancelled at the deadline, or no connection free before it: too slow either way.
            late = (psycopg.errors.QueryCanceled, PoolTimeout)
            if deadline is not None and isinstance(exc.__cause__, late):
                raise QueryTooSlow() from None
            raise

    async def doc_names(self, room: str) -> list[str]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT key FROM search_entries WHERE kind = 'doc' AND room = %s"
                " AND NOT deleted ORDER BY key",
                (room,),
            )
            return [str(key) for (key,) in await cur.fetchall()]

    async def rooms(self) -> list[str]:
        async with self.db.transaction() as conn:
            cur = await conn.execute("SELECT DISTINCT room FROM search_entries ORDER BY room")
            return [str(room) for (room,) in await cur.fetchall()]

    async def messages(self, room: str, after: int, limit: int) -> list[tuple[int, int, str]]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT id, coalesce(seq, 0), key FROM search_entries WHERE room = %s"
                " AND id > %s AND kind = 'chat' AND NOT deleted ORDER BY id LIMIT %s",
                (room, after, limit),
            )
            return [(int(i), int(seq), str(key)) for i, seq, key in await cur.fetchall()]

    async def set_complete(self, complete: bool) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO search_state (key, value) VALUES ('complete', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(int(complete)),),
            )

    async def counts(self) -> Counts:
        async with self.db.transaction() as conn:
            return await read_counts(conn)

    @property
    def writer_pid(self) -> int | None:
        """The server process holding this writer's registration (``pg_stat_activity``)."""
        return None if self._holder is None else self._holder.info.backend_pid

    async def live_writers(self) -> int:
        """Processes registered as writing the index, this one included (``--fresh``)."""
        if self._holder is None:
            raise StoreError("search index is closed")
        try:
            await _reap_ended_writers(self._holder, self._key)
            cur = await self._holder.execute("SELECT count(*) FROM search_writers")
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"{masked('store', self.url)}: {exc}") from exc
        return int(row[0]) if row else 0

    async def clear(self) -> None:
        """Forget every entry and drop (``collab search reindex --fresh``, no server running)."""
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, WRITE_LOCK))
            await conn.execute("TRUNCATE search_entries, search_dropped_rooms")
            await conn.execute("DELETE FROM search_state WHERE key = 'complete'")


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


async def _register(holder: Conn) -> int:
    """A fresh key of this writer, its session lock held on ``holder``, its row inserted."""
    while True:
        key = secrets.randbelow(2**31 - 1) + 1
        cur = await holder.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key))
        row = await cur.fetchone()
        if not row or not row[0]:
            continue
        cur = await holder.execute(
            "INSERT INTO search_writers (lock_key, since) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING lock_key",
            (key, time.time()),
        )
        if await cur.fetchone():
            return key
        await holder.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))


async def _reap_ended_writers(holder: Conn, own: int | None) -> bool:
    """Remove the rows of writers whose lock is free (they ended without closing); True when
    there were none."""
    cur = await holder.execute("SELECT lock_key FROM search_writers WHERE lock_key <> %s", (own,))
    clean = True
    for (key,) in await cur.fetchall():
        got = await (
            await holder.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key))
        ).fetchone()
        if got and got[0]:
            clean = False
            await holder.execute("DELETE FROM search_writers WHERE lock_key = %s", (key,))
            await holder.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))
    return clean


async def read_counts(conn: Conn) -> Counts:
    cur = await conn.execute(
        "SELECT kind, deleted, count(*) FROM search_entries GROUP BY kind, deleted"
    )
    chat = docs = tombstones = 0
    for kind, deleted, n in await cur.fetchall():
        if deleted:
            tombstones += n
        elif kind == "chat":
            chat = n
        else:
            docs = n
    return Counts(chat=chat, docs=docs, tombstones=tombstones)


async def _drop(conn: Conn, drop: Drop) -> None:
    await conn.execute(
        "INSERT INTO search_dropped_rooms (room, at) VALUES (%s, %s) ON CONFLICT (room)"
        " DO UPDATE SET at = greatest(search_dropped_rooms.at, excluded.at)",
        (drop.room, drop.at),
    )
    await conn.execute(
        "DELETE FROM search_entries WHERE room = %s AND at < %s", (drop.room, drop.at)
    )


def _put_args(entry: Entry) -> tuple[object, ...]:
    """The arguments of ``search_put`` (the migration's SQL function) for one entry."""
    text = "" if entry.deleted else pg_text(clean_text(entry.text))
    return (
        entry.kind,
        entry.room,
        entry.key,
        text,
        entry.at,
        entry.version,
        entry.deleted,
        entry.author,
        entry.seq,
        written_at(entry),
    )


_PUT = "SELECT search_put(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
