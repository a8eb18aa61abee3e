"""``collab compact``: fold every doc's log into a snapshot, offline or under a live server.

Compaction has to apply updates to a real Doc (``doc.get_update()`` with GC on is what drops
deleted content; ``merge_updates`` is not compaction). A stored doc may be hostile, so:

1. the doc is first walked by the bounded scanner (``collab.ops.inspect.check_doc``), with the
   server's caps; a doc that fails is skipped and reported, never loaded;
2. the Doc is built in a child process (``python -m collab.ops.compact``), one per doc: if
   yrs crashes or runs away, the child dies or times out and this process reports the doc;
3. the snapshot is written with exactly the rows it folded deleted, in one transaction, and
   only if the doc's generation and snapshot are still the ones that were read (a running
   server may have compacted or deleted it meanwhile: then the doc is left as it is).

A running server's own copy of the doc stays valid: its rows after ``upto`` are untouched and
its next compaction writes a snapshot that contains ours.
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collab.db import StoreError, connect_existing, migrate
from collab.ops.inspect import check_doc, doc_parts
from collab.wire import Limits


@dataclass
class CompactReport:
    compacted: list[tuple[str, str, int, int]] = field(default_factory=list)  # rows, bytes saved
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # room, doc, why
    untouched: int = 0  # docs without log rows


def _frame(parts: list[bytes], gc: bool) -> bytes:
    out = [b"\x01" if gc else b"\x00"]
    for part in parts:
        out.append(struct.pack(">I", len(part)))
        out.append(part)
    return b"".join(out)


def build_snapshot(parts: list[bytes], gc: bool, timeout: float) -> bytes:
    """``doc.get_update()`` of the parts applied in order, computed in a child process."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "collab.ops.compact"],
            input=_frame(parts, gc),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StoreError(f"compaction child timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        how = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exit {proc.returncode}"
        )
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise StoreError(f"compaction child failed ({how}){': ' + tail[0] if tail else ''}")
    return proc.stdout


def compact_db(db: Path, limits: Limits, *, timeout: float = 120.0) -> CompactReport:
    report = CompactReport()
    conn = connect_existing(db)
    try:
        if migrate.pending(conn):
            raise StoreError(f"{db} has pending migrations: run `collab migrate` first")
        has_rooms = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rooms'"
        ).fetchone()
        docs = conn.execute("SELECT room, name FROM docs ORDER BY room, name").fetchall()
        for room, name in docs:
            found = _read(conn, room, name)
            if found is None:  # deleted (through a running server) since the list was read
                report.skipped.append((room, name, "deleted while compacting"))
                continue
            generation, snapshot_seq, parts, upto = found
            if upto <= snapshot_seq:
                report.untouched += 1
                continue
            problem, _ = check_doc(parts, limits)
            if problem is not None:
                report.skipped.append((room, name, problem))
                continue
            gc = True
            if has_rooms:
                row = conn.execute("SELECT gc FROM rooms WHERE id=?", (room,)).fetchone()
                gc = row is None or bool(row[0])
            try:
                snapshot = build_snapshot([p for _, p in parts], gc, timeout)
            except StoreError as exc:
                report.skipped.append((room, name, str(exc)))
                continue
            before = sum(len(p) for _, p in parts)
            if _write(conn, room, name, generation, snapshot_seq, snapshot, upto):
                report.compacted.append((room, name, len(parts), before - len(snapshot)))
            else:
                report.skipped.append((room, name, "changed while compacting; left as is"))
        return report
    finally:
        conn.close()


def _read(
    conn: sqlite3.Connection, room: str, name: str
) -> tuple[str, int, list[tuple[str, bytes]], int] | None:
    """The doc's generation, snapshot seq, parts and last seq, from one consistent read (a
    running server may have compacted or deleted it since the list of docs was read: None)."""
    conn.execute("BEGIN")
    try:
        row = conn.execute(
            "SELECT generation, snapshot_seq FROM docs WHERE room=? AND name=?", (room, name)
        ).fetchone()
        if row is None:
            return None
        generation, snapshot_seq = row
        (upto,) = conn.execute(
            "SELECT COALESCE(max(seq), ?) FROM doc_updates WHERE room=? AND name=?",
            (snapshot_seq, room, name),
        ).fetchone()
        if upto <= snapshot_seq:
            return generation, snapshot_seq, [], upto
        return generation, snapshot_seq, list(doc_parts(conn, room, name, snapshot_seq)), upto
    finally:
        conn.execute("COMMIT")


def _write(
    conn: sqlite3.Connection,
    room: str,
    name: str,
    generation: str,
    snapshot_seq: int,
    snapshot: bytes,
    upto: int,
) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT generation, snapshot_seq FROM docs WHERE room=? AND name=?", (room, name)
        ).fetchone()
        if row is None or row[0] != generation or row[1] != snapshot_seq:
            conn.execute("ROLLBACK")
            return False
        conn.execute(
            "UPDATE docs SET snapshot=?, snapshot_seq=? WHERE room=? AND name=?",
            (snapshot, upto, room, name),
        )
        conn.execute(
            "DELETE FROM doc_updates WHERE room=? AND name=? AND seq<=?", (room, name, upto)
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


def _child() -> None:
    """The child: read framed updates on stdin, write the compacted update on stdout."""
    from pycrdt import Doc

    data = sys.stdin.buffer.read()
    gc, pos = data[0] == 1, 1
    doc: Doc[Any] = Doc(skip_gc=not gc)
    with doc.transaction(origin="compact"):
        while pos < len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            doc.apply_update(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
    sys.stdout.buffer.write(doc.get_update())


if __name__ == "__main__":
    _child()
