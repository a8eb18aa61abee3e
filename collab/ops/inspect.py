"""``stats`` and ``verify``: counts from SQL, doc contents only through the bounded scanner.

A stored doc is its snapshot plus its log rows. ``check_doc`` walks them, in order, through
``scan_update`` (iterative, every count bounded by the bytes left) and ``DocIndex`` (shared-type
nesting across updates, YJS-WIRE §4) with the server's own caps: a doc that passes is one the
server can load and tear down without deep recursion in yrs; one that fails is reported with
the reason and the row, and the walk goes on with the next doc. No pycrdt Doc is built here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from collab.ops.blobs import BlobReport, verify_blobs
from collab.wire import DocIndex, Limits, MalformedInput, scan_update


@dataclass(frozen=True)
class DocStat:
    room: str
    name: str
    generation: str
    snapshot_bytes: int
    log_rows: int
    log_bytes: int

    @property
    def size(self) -> int:
        return self.snapshot_bytes + self.log_bytes


@dataclass
class Stats:
    rooms: int  # rooms the MetaStore knows (0 before the meta migration)
    doc_rooms: int  # rooms holding at least one stored doc
    docs: int
    log_rows: int
    snapshot_bytes: int
    log_bytes: int
    file_bytes: int
    largest: list[DocStat] = field(default_factory=list)
    messages: int = 0  # chat messages, live and archived (0 before the chat migration)
    archived_messages: int = 0
    uploads: int = 0  # uploaded files' references, one per upload into a room
    upload_bytes: int = 0  # their sizes (what the rooms' quotas count)
    stored_files: int = 0  # distinct stored files (the blob store deduplicates)
    stored_file_bytes: int = 0

    def as_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["largest"] = [{**dataclasses.asdict(d), "size": d.size} for d in self.largest]
        return out


def open_readonly(db: Path) -> sqlite3.Connection:
    """A read-only connection: never creates, never writes, never runs a migration.

    The URI is built by pathlib (``as_uri`` percent-encodes ``#``, ``?`` and ``%``): pasted
    raw into ``file:...?mode=ro``, a ``#`` in the path would end it there and drop
    ``mode=ro``, so SQLite would open (or create) another file read-write.
    """
    if not db.is_file():
        raise FileNotFoundError(f"{db}: no such database")
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def integrity(conn: sqlite3.Connection, most: int = 20) -> str:
    """SQLite's full ``integrity_check``: "ok", or its first ``most`` problems. Not
    ``quick_check``, which skips whether every index matches its table (an index that lost
    its rows makes lookups through it miss them)."""
    rows = conn.execute(f"PRAGMA integrity_check({int(most)})").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def read_stats(conn: sqlite3.Connection, db: Path, top: int = 10) -> Stats:
    """Counts and the ``top`` largest docs, in one read transaction (a consistent view)."""
    conn.execute("BEGIN")
    try:
        rooms = 0
        if _has_table(conn, "rooms"):
            (rooms,) = conn.execute("SELECT count(*) FROM rooms").fetchone()
        docs, doc_rooms, snapshot_bytes = conn.execute(
            "SELECT count(*), count(DISTINCT room), COALESCE(sum(length(snapshot)), 0) FROM docs"
        ).fetchone()
        log_rows, log_bytes = conn.execute(
            "SELECT count(*), COALESCE(sum(length(data)), 0) FROM doc_updates"
        ).fetchone()
        largest = [
            DocStat(*row)
            for row in conn.execute(
                "SELECT d.room, d.name, d.generation, COALESCE(length(d.snapshot), 0),"
                " COALESCE(u.n, 0), COALESCE(u.b, 0) FROM docs d LEFT JOIN"
                " (SELECT room, name, count(*) AS n, sum(length(data)) AS b FROM doc_updates"
                "  GROUP BY room, name) u ON u.room = d.room AND u.name = d.name"
                " ORDER BY COALESCE(length(d.snapshot), 0) + COALESCE(u.b, 0) DESC,"
                " d.room, d.name LIMIT ?",
                (top,),
            )
        ]
        messages = archived = 0
        if _has_table(conn, "messages"):
            messages, archived = conn.execute(
                "SELECT count(*), COALESCE(sum(archived), 0) FROM messages"
            ).fetchone()
        uploads = (0, 0, 0, 0)
        if _has_table(conn, "files"):
            uploads = conn.execute(
                "SELECT (SELECT count(*) FROM files), (SELECT COALESCE(sum(size), 0) FROM files),"
                " count(*), COALESCE(sum(size), 0)"
                " FROM (SELECT sha256, max(size) AS size FROM files GROUP BY sha256)"
            ).fetchone()
    finally:
        conn.execute("COMMIT")
    file_bytes = sum(p.stat().st_size for p in _db_files(db))
    found = Stats(rooms, doc_rooms, docs, log_rows, snapshot_bytes, log_bytes, file_bytes, largest)
    found.messages, found.archived_messages = messages, archived
    found.uploads, found.upload_bytes, found.stored_files, found.stored_file_bytes = uploads
    return found


def chat_problems(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Rooms whose messages are not numbered 1..n without a gap (the history API and the
    live window rely on it), and messages of rooms that no longer exist."""
    if not _has_table(conn, "messages"):
        return []
    problems = [
        (room, "chat", f"messages: {count} rows but seq runs {low}..{high}")
        for room, count, low, high in conn.execute(
            "SELECT room_id, count(*), min(seq), max(seq) FROM messages GROUP BY room_id"
            " HAVING min(seq) != 1 OR max(seq) != count(*) ORDER BY room_id"
        )
    ]
    problems += [
        (room, "chat", f"{count} messages of a room that does not exist")
        for room, count in conn.execute(
            "SELECT room_id, count(*) FROM messages WHERE room_id NOT IN (SELECT id FROM rooms)"
            " GROUP BY room_id ORDER BY room_id"
        )
    ]
    return problems


def _db_files(db: Path) -> Iterator[Path]:
    for suffix in ("", "-wal", "-shm"):
        path = db.with_name(db.name + suffix)
        if path.exists():
            yield path


def check_doc(parts: Iterable[tuple[str, bytes]], limits: Limits) -> tuple[str | None, int]:
    """Walk a doc's (label, update) parts in order through the bounded scanner.

    Returns (problem or None, structs left pending). Caps are the server's, except the ones
    that bound a client frame rather than a stored doc (as ``DocIndex.from_update`` does).
    """
    stored = dataclasses.replace(limits, allow_bigint=True, allow_nonfinite_floats=True)
    index = DocIndex(limits)
    for label, data in parts:
        own = dataclasses.replace(stored, max_elements=max(limits.max_elements, len(data)))
        try:
            delta = index.check(scan_update(bytes(data), own))
        except MalformedInput as exc:
            return f"{label}: {exc.reason}", index.pending_count
        index.commit(delta)
    return None, index.pending_count


def doc_parts(
    conn: sqlite3.Connection, room: str, name: str, snapshot_seq: int
) -> Iterator[tuple[str, bytes]]:
    """The snapshot, then the log rows after it, one at a time (bounded memory)."""
    (snapshot,) = conn.execute(
        "SELECT snapshot FROM docs WHERE room=? AND name=?", (room, name)
    ).fetchone()
    if snapshot:
        yield "snapshot", bytes(snapshot)
    rows = conn.execute(
        "SELECT seq, data FROM doc_updates WHERE room=? AND name=? AND seq>? ORDER BY seq",
        (room, name, snapshot_seq),
    )
    for seq, data in rows:
        yield f"log seq {seq}", bytes(data)


@dataclass
class VerifyReport:
    stats: Stats
    integrity: str
    checked: int = 0
    bad_docs: list[tuple[str, str, str]] = field(default_factory=list)  # room, doc, problem
    warnings: list[str] = field(default_factory=list)
    files: BlobReport = field(default_factory=BlobReport)  # uploaded files, re-hashed

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and not self.bad_docs and not self.files.problems


def verify_db(db: Path, limits: Limits, files: Path | None = None) -> VerifyReport:
    """Open ``db`` read-only, check SQLite's integrity, walk every doc, then re-hash every
    uploaded file its records reference (under ``files``; none checked when None)."""
    conn = open_readonly(db)
    try:
        report = VerifyReport(read_stats(conn, db), integrity(conn))
        conn.execute("BEGIN")  # one consistent view, also of a live database
        docs = conn.execute(
            "SELECT room, name, snapshot_seq, last_seq FROM docs ORDER BY room, name"
        ).fetchall()
        for room, name, snapshot_seq, last_seq in docs:
            report.checked += 1
            problem, pending = check_doc(doc_parts(conn, room, name, snapshot_seq), limits)
            if problem is None:
                (max_seq,) = conn.execute(
                    "SELECT max(seq) FROM doc_updates WHERE room=? AND name=?", (room, name)
                ).fetchone()
                if max_seq is not None and max_seq != last_seq:
                    problem = f"log ends at seq {max_seq} but docs.last_seq is {last_seq}"
            if problem is not None:
                report.bad_docs.append((room, name, problem))
            elif pending:
                report.warnings.append(
                    f"{room}/{name}: {pending} structs wait for dependencies that never arrived"
                )
        report.bad_docs += chat_problems(conn)
        if files is not None:
            report.files = verify_blobs(conn, files)
        conn.execute("COMMIT")
        return report
    finally:
        conn.close()
