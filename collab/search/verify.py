"""The search index's part of ``collab verify``: is the index a sound index of this database?

Checked on a private copy (FTS5's integrity check is an INSERT, which a read-only connection
refuses, and a backup is never written to): SQLite's full integrity check (not the quick one,
which skips whether each index b-tree matches its table), FTS5's own integrity check
(the full-text index against its content table), then the entries against the database they
index: live messages and live shared docs, counted on both sides. A failed integrity check is
a problem (exit 3); a count that differs is a warning, since a backup taken while the server
wrote can hold an index a few writes apart from its database, and a server started on it
rebuilds the index anyway (the copy was not closed cleanly). A missing index is a warning too:
the server builds one at its first start.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from collab.ops.inspect import integrity, open_readonly
from collab.search.index import Counts
from collab.search.sqlite import SCHEMA_VERSION, read_counts


@dataclass
class IndexReport:
    present: bool
    integrity: str = "not checked"
    counts: Counts | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        counts = self.counts
        return {
            "present": self.present,
            "integrity": self.integrity,
            "entries": None
            if counts is None
            else {"chat": counts.chat, "docs": counts.docs, "tombstones": counts.tombstones},
            "problems": self.problems,
            "warnings": self.warnings,
        }


def _truth(db: Path) -> tuple[int, int]:
    """Live messages and live shared docs (not ``chat`` or ``_*``) in the database."""
    conn = open_readonly(db)
    try:
        conn.execute("BEGIN")
        has = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        messages = 0
        if "messages" in has:
            (messages,) = conn.execute("SELECT count(*) FROM messages WHERE NOT deleted").fetchone()
        (docs,) = conn.execute(
            "SELECT count(*) FROM docs WHERE name != 'chat' AND substr(name, 1, 1) != '_'"
        ).fetchone()
        conn.execute("COMMIT")
        return int(messages), int(docs)
    finally:
        conn.close()


def _check_copy(copy: Path, report: IndexReport) -> tuple[bool, bool]:
    """Integrity and counts of the private copy; (clean, complete) as the index says."""
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        checked = integrity(conn)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if checked != "ok":
            report.integrity = checked
            report.problems.append(f"SQLite's integrity check failed: {checked}")
            return False, False
        if version != SCHEMA_VERSION:
            report.integrity = f"schema version {version}"
            report.warnings.append(
                f"the index has schema version {version}, not {SCHEMA_VERSION}: "
                "the server rebuilds it"
            )
            return False, False
        try:
            conn.execute("INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            report.integrity = f"fts: {exc}"
            report.problems.append(f"the full-text index does not match its entries: {exc}")
            return False, False
        report.integrity = "ok"
        report.counts = read_counts(conn)
        state = dict(conn.execute("SELECT key, value FROM state").fetchall())
        return state.get("clean") == "1", state.get("complete") == "1"
    finally:
        conn.close()


def verify_index(index: Path, db: Path) -> IndexReport:
    """Check the index file ``index`` against the database ``db`` (both only read)."""
    if not index.is_file():
        return IndexReport(
            present=False,
            warnings=[f"no search index ({index.name}): the server builds it at its start"],
        )
    report = IndexReport(present=True)
    with tempfile.TemporaryDirectory(prefix="collab-verify-") as tmp:
        copy = Path(tmp) / "index.db"
        source = open_readonly(index)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        except sqlite3.DatabaseError as exc:
            report.integrity = str(exc)
            report.problems.append(f"the index cannot be read: {exc}")
            return report
        finally:
            source.close()
            target.close()
        clean, complete = _check_copy(copy, report)
    if report.counts is None:
        return report
    messages, docs = _truth(db)
    counts = report.counts
    if (counts.chat, counts.docs) != (messages, docs):
        fix = (
            "run `collab search reindex`"
            if clean and complete
            else "a server started on it rebuilds the index (it was not closed cleanly)"
        )
        report.warnings.append(
            f"the index holds {counts.chat} messages and {counts.docs} docs, the database "
            f"{messages} and {docs}: {fix}"
        )
    elif not complete:
        report.warnings.append("the index was never completely built: the server rebuilds it")
    return report
