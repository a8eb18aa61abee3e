"""``collab verify --store postgresql://...``: every doc of a PostgreSQL database through the
bounded scanner, while nodes keep writing.

The same walk as SQLite's ``verify_db`` (``collab.ops.inspect.check_doc``: snapshot, then log,
with the server's caps; no doc is deserialised into yrs), over one REPEATABLE READ, READ ONLY
transaction: one consistent view of a live database, no lock that would stop a node. Log rows
stream through a server-side cursor, so memory stays bounded by the largest row, not the
largest doc. A backup is a ``pg_dump`` (docs/postgresql.md); to verify one, restore it into a
scratch database and point this at it. The search tables are counted against the messages
and docs in the same view (a difference is a warning).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg.rows import TupleRow

from collab.db.errors import StoreError
from collab.db.pgmigrate import connect, pending
from collab.ops.inspect import check_doc
from collab.settings import masked
from collab.wire import Limits


@dataclass
class PgVerifyReport:
    docs: int = 0
    log_rows: int = 0
    snapshot_bytes: int = 0
    log_bytes: int = 0
    checked: int = 0
    bad_docs: list[tuple[str, str, str]] = field(default_factory=list)  # room, doc, problem
    warnings: list[str] = field(default_factory=list)
    # The search index's live entries and tombstones (collab.search.postgres), same view.
    search_chat: int = 0
    search_docs: int = 0
    search_tombstones: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad_docs

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["bad_docs"] = [{"room": r, "doc": d, "problem": p} for r, d, p in self.bad_docs]
        return {"ok": self.ok, **out}


def verify_postgres(url: str, limits: Limits) -> PgVerifyReport:
    """Walk every doc of the database ``url`` names; StoreError when it cannot be read."""
    try:
        with connect(url) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if pending(conn):
                where = masked("store", url)
                raise StoreError(f"{where} has pending migrations: run `collab migrate` first")
            report = _walk(conn, limits)
            _search_index(conn, report)
            return report
    except psycopg.Error as exc:
        raise StoreError(f"{masked('store', url)}: {exc}") from exc


def _walk(conn: psycopg.Connection[TupleRow], limits: Limits) -> PgVerifyReport:
    report = PgVerifyReport()
    totals = conn.execute(
        "SELECT (SELECT count(*) FROM docs),"
        " (SELECT COALESCE(sum(length(snapshot)), 0) FROM docs),"
        " (SELECT count(*) FROM doc_updates),"
        " (SELECT COALESCE(sum(length(data)), 0) FROM doc_updates)"
    ).fetchone()
    assert totals is not None
    report.docs, report.snapshot_bytes, report.log_rows, report.log_bytes = map(int, totals)
    docs = conn.execute(
        'SELECT room, name, snapshot_seq, last_seq FROM docs ORDER BY room COLLATE "C",'
        ' name COLLATE "C"'
    ).fetchall()
    for room, name, snapshot_seq, last_seq in docs:
        report.checked += 1
        parts = _doc_parts(conn, room, name, snapshot_seq)
        try:
            problem, waiting = check_doc(parts, limits)
        finally:
            parts.close()  # an early return leaves the server-side cursor open otherwise
        if problem is None:
            row = conn.execute(
                "SELECT max(seq) FROM doc_updates WHERE room = %s AND name = %s", (room, name)
            ).fetchone()
            max_seq = row[0] if row else None
            if max_seq is not None and max_seq != last_seq:
                problem = f"log ends at seq {max_seq} but docs.last_seq is {last_seq}"
        if problem is not None:
            report.bad_docs.append((room, name, problem))
        elif waiting:
            report.warnings.append(
                f"{room}/{name}: {waiting} structs wait for dependencies that never arrived"
            )
    return report


def _search_index(conn: psycopg.Connection[TupleRow], report: PgVerifyReport) -> None:
    """The search tables' counts against what they index: live messages and live shared docs
    (not ``chat`` or ``_*``). A difference is a warning, as for SQLite's index file: nodes
    index a few writes behind, and ``collab search reindex`` repairs it."""
    rows = conn.execute(
        "SELECT kind, deleted, count(*) FROM search_entries GROUP BY kind, deleted"
    ).fetchall()
    for kind, deleted, n in rows:
        if deleted:
            report.search_tombstones += int(n)
        elif kind == "chat":
            report.search_chat = int(n)
        else:
            report.search_docs = int(n)
    truth = conn.execute(
        "SELECT (SELECT count(*) FROM messages WHERE NOT deleted), (SELECT count(*) FROM docs"
        " WHERE name <> 'chat' AND left(name, 1) <> '_')"
    ).fetchone()
    messages, docs = (int(truth[0]), int(truth[1])) if truth else (0, 0)
    if (report.search_chat, report.search_docs) != (messages, docs):
        report.warnings.append(
            f"the search index holds {report.search_chat} messages and {report.search_docs} "
            f"docs, the database {messages} and {docs}: run `collab search reindex`"
        )
    complete = conn.execute("SELECT value FROM search_state WHERE key = 'complete'").fetchone()
    if complete is None or complete[0] != "1":
        report.warnings.append(
            "the search index was never completely built: the next node to start rebuilds it"
        )


def _doc_parts(
    conn: psycopg.Connection[TupleRow], room: str, name: str, snapshot_seq: int
) -> Generator[tuple[str, bytes], None, None]:
    """The snapshot, then the log rows after it, streamed (bounded memory)."""
    row = conn.execute(
        "SELECT snapshot FROM docs WHERE room = %s AND name = %s", (room, name)
    ).fetchone()
    if row is not None and row[0]:
        yield "snapshot", bytes(row[0])
    with conn.cursor(name="collab_verify_log") as cur:
        cur.itersize = 256
        cur.execute(
            "SELECT seq, data FROM doc_updates WHERE room = %s AND name = %s AND seq > %s"
            " ORDER BY seq",
            (room, name, snapshot_seq),
        )
        for seq, data in cur:
            yield f"log seq {seq}", bytes(data)
