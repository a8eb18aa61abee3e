"""SQLite DocumentStore: WAL, one writer, group commit.

Writes go through ``collab.db.Database``, in a server the one the meta store uses too (one
writer per file).
Appends that arrive while a commit is in flight are written together by the next one, in one
transaction, with whatever else the file's other writers queued meanwhile: one fsync for many
updates of many docs (group commit) without a timer. Reads use the database's reader
connections, so a cold load never waits behind a commit (WAL readers do not block the writer).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from collab.db import Database, StoreError
from collab.names import DocKey
from collab.store.base import DocInfo, GenerationGone, StoredDoc, doc_limit


class SQLiteStore:
    def __init__(
        self, path: Path, synchronous: str = "FULL", database: Database | None = None
    ) -> None:
        """``database``: the one the meta store of the same file uses (one writer per file)."""
        self.path = path
        self.synchronous = synchronous
        self._db = database or Database(path, synchronous)

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        try:
            await self._db.read(lambda conn: conn.execute("SELECT 1").fetchone())
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def load(self, key: DocKey) -> StoredDoc:
        return await self._db.read(lambda conn: _load(conn, key))

    async def append(
        self,
        key: DocKey,
        updates: Sequence[bytes],
        *,
        generation: str | None = None,
        max_docs: int | None = None,
    ) -> int:
        return await self._db.write(lambda conn: _append(conn, key, updates, generation, max_docs))

    async def updates_after(self, key: DocKey, seq: int) -> StoredDoc:
        return await self._db.read(lambda conn: _load(conn, key, after=seq))

    async def compact(
        self, key: DocKey, snapshot: bytes, upto_seq: int, generation: str | None = None
    ) -> None:
        def _compact(conn: sqlite3.Connection) -> None:
            # Conditional: another process (a node) may have stored a newer snapshot, or
            # deleted and re-created the doc, since this snapshot was taken.
            changed = conn.execute(
                "UPDATE docs SET snapshot=?, snapshot_seq=? WHERE room=? AND name=?"
                " AND snapshot_seq<=? AND (? IS NULL OR generation=?)",
                (snapshot, upto_seq, *key, upto_seq, generation, generation),
            ).rowcount
            if changed:
                conn.execute(
                    "DELETE FROM doc_updates WHERE room=? AND name=? AND seq<=?", (*key, upto_seq)
                )

        await self._db.write(_compact)

    async def list_docs(self, room: str) -> list[DocInfo]:
        def _list(conn: sqlite3.Connection) -> list[DocInfo]:
            rows = conn.execute(
                "SELECT d.name, d.generation, d.last_seq, COALESCE(length(d.snapshot), 0)"
                " + COALESCE((SELECT sum(length(u.data)) FROM doc_updates u"
                " WHERE u.room=d.room AND u.name=d.name AND u.seq>d.snapshot_seq), 0)"
                " FROM docs d WHERE d.room=? ORDER BY d.name",
                (room,),
            ).fetchall()
            return [DocInfo(name, gen, size, seq) for name, gen, seq, size in rows]

        return await self._db.read(_list)

    async def count_docs(self, room: str) -> int:
        def _count(conn: sqlite3.Connection) -> int:
            (n,) = conn.execute("SELECT count(*) FROM docs WHERE room=?", (room,)).fetchone()
            return int(n)

        return await self._db.read(_count)

    async def delete_doc(self, key: DocKey) -> None:
        def _delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM doc_updates WHERE room=? AND name=?", key)
            conn.execute("DELETE FROM docs WHERE room=? AND name=?", key)

        await self._db.write(_delete)


def _room_has_space(conn: sqlite3.Connection, key: DocKey, max_docs: int) -> bool:
    """Whether the room may gain ``key``'s doc: it is described already (counted), or the
    room's docs, stored or described (the meta store's ``doc_meta``, in this same file), are
    fewer than ``max_docs``."""
    names = {
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM docs WHERE room=? UNION SELECT name FROM doc_meta WHERE room_id=?",
            (key.room, key.room),
        )
    }
    return key.doc in names or len(names) < max_docs


def _load(conn: sqlite3.Connection, key: DocKey, after: int | None = None) -> StoredDoc:
    """The doc's snapshot and the rows after it, read in one transaction (one consistent view);
    with ``after``, only the rows past that seq, unless the snapshot already folded some."""
    conn.execute("BEGIN")
    try:
        row = conn.execute(
            "SELECT generation, snapshot_seq FROM docs WHERE room=? AND name=?", key
        ).fetchone()
        if row is None:
            return StoredDoc()
        generation, snapshot_seq = row
        snapshot, since = None, after
        if after is None or after < snapshot_seq:
            # The whole doc; only then the snapshot, a large blob.
            since = snapshot_seq
            (snapshot,) = conn.execute(
                "SELECT snapshot FROM docs WHERE room=? AND name=?", key
            ).fetchone()
        updates = conn.execute(
            "SELECT seq, data FROM doc_updates WHERE room=? AND name=? AND seq>? ORDER BY seq",
            (*key, since),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    return StoredDoc(generation, snapshot, snapshot_seq, [(s, bytes(d)) for s, d in updates])


def _append(
    conn: sqlite3.Connection,
    key: DocKey,
    updates: Sequence[bytes],
    generation: str | None,
    max_docs: int | None = None,
) -> int:
    """Append the updates (inside the caller's transaction, its own savepoint: a raise here
    undoes only this append); the last seq. GenerationGone, writing nothing, unless the doc
    is ``generation`` (when given); LimitReached if it would create a doc past ``max_docs``:
    the checks and the write share the one writer's turn."""
    found = conn.execute(
        "SELECT last_seq, generation FROM docs WHERE room=? AND name=?", key
    ).fetchone()
    if generation is not None and (found is None or found[1] != generation):
        raise GenerationGone(key, generation, None if found is None else found[1])
    if found is None and max_docs is not None and not _room_has_space(conn, key, max_docs):
        raise doc_limit()
    if found is None:  # the doc's first write: it gets its generation
        conn.execute(
            "INSERT INTO docs (room, name, generation, created_at) VALUES (?, ?, ?, ?)",
            (*key, uuid.uuid4().hex, time.time()),
        )
    seq = 0 if found is None else found[0]
    rows = []
    for update in updates:
        seq += 1
        rows.append((*key, seq, update))
    conn.executemany("INSERT INTO doc_updates (room, name, seq, data) VALUES (?, ?, ?, ?)", rows)
    conn.execute("UPDATE docs SET last_seq=? WHERE room=? AND name=?", (seq, *key))
    return int(seq)
