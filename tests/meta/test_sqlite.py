"""SQLite only: the file itself (digests, not secrets, on disk; state across a reopen; purged
rows; refusing pending migrations and use after close)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, cast

import pytest

from collab.db import StoreError, migrate_with_backup
from collab.meta import Attempt, AuditEvent, Endpoint, Health, NewMessage, Role, digest
from collab.meta.sqlite import SQLiteMetaStore
from collab.meta.sqlite.base import SQLiteTx
from tests.meta.support import T0, Clock, add_user

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_sqlite_stores_digests_only(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path)
    await meta.open()
    await meta.create_room("r", "R", "u1")
    _, session_secret = await meta.create_session("u1", ttl=60)
    _, token_secret = await meta.create_api_token("u1", "t")
    _, invite_secret = await meta.create_invite("r", Role.viewer, "u1", ttl=60)
    ticket_secret = await meta.create_ticket("u1", "r", None, None, ttl=60)
    secrets = [session_secret, token_secret, invite_secret, ticket_secret]
    for when in ("open", "closed"):
        raw = _db_bytes(path)
        for secret in secrets:
            assert secret.encode() not in raw, f"a plain secret is in the database ({when})"
            assert digest(secret).encode() in raw, "the check reads the right bytes"
        await meta.close()


async def test_sqlite_persists_across_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path, clock=clock)
    await meta.open()
    user_id = await add_user(meta)
    await meta.create_room("r", "R", user_id)
    _, session_secret = await meta.create_session(user_id, ttl=60)
    await meta.cache_set("k", "v", ttl=60)
    await meta.record(AuditEvent(at=T0, action="room.create", actor=user_id, room_id="r"))
    await meta.close()

    again = SQLiteMetaStore(path, synchronous="NORMAL", clock=clock)
    await again.open()
    try:
        assert (u := await again.get_user(user_id)) is not None and u.name == "alice"
        room = await again.get_room("r")
        assert room is not None and room.created_by == user_id
        assert await again.list_rooms_for(user_id) == [(room, Role.owner)]
        assert (s := await again.get_session(session_secret)) is not None
        assert s.user_id == user_id
        assert await again.cache_get("k") == "v"
        assert [e.action for e in await again.list_audit()] == ["room.create"]
    finally:
        await again.close()


async def test_sqlite_purges_expired_cache_rows(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path, clock=clock)
    await meta.open()
    await meta.cache_set("old", "v", ttl=1)
    clock.advance(2)
    await meta.cache_set("new", "v", ttl=60)
    await meta.close()
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM cache")] == ["new"]


async def test_sqlite_refuses_pending_migrations_and_closed_use(tmp_path: Path) -> None:
    meta = SQLiteMetaStore(tmp_path / "fresh.db")
    with pytest.raises(StoreError, match="pending migrations"):
        await meta.open()
    migrate_with_backup(tmp_path / "fresh.db")
    await meta.open()
    await meta.close()
    with pytest.raises(StoreError, match="closed"):
        await meta.get_room("r")
    with pytest.raises(StoreError, match="closed"):
        await meta.create_room("r", "R", "u1")


async def test_migration_0003_keeps_invites_and_hides_earlier_rooms(tmp_path: Path) -> None:
    """A database made before 0003: an email-bound invite (its binding was a cache entry) keeps
    its email, and a room re-created after a deletion starts its audit after that deletion."""
    from collab.db import migrate as m

    path = tmp_path / "c.db"
    conn = sqlite3.connect(path, isolation_level=None)
    m.applied_versions(conn)  # creates the bookkeeping table
    m.apply(conn, [mig for mig in m.load_migrations() if mig.version <= 2])
    conn.executescript(
        """
        INSERT INTO rooms VALUES ('r', 'R', 'u2', 10.0, 1);
        INSERT INTO members VALUES ('r', 'u2', 'owner', 10.0);
        INSERT INTO invites (id, digest, room_id, role, created_by, expires_at)
            VALUES ('i1', 'dg', 'r', 'editor', 'u2', 9e9);
        INSERT INTO cache VALUES ('invite-email:dg', 'dana@example.com', 9e9);
        INSERT INTO audit (at, action, room_id) VALUES (1.0, 'room.create', 'r');
        INSERT INTO audit (at, action, room_id) VALUES (2.0, 'room.delete', 'r');
        INSERT INTO audit (at, action, room_id) VALUES (3.0, 'room.create', 'r');
        """
    )
    conn.close()
    assert migrate_with_backup(path)[:1] == ["0003_invites_and_audit"]  # then any later ones
    meta = SQLiteMetaStore(path)
    await meta.open()
    try:
        invite = await meta.get_invite("i1")
        assert invite is not None and invite.email == "dana@example.com"
        assert await meta.cache_get("invite-email:dg") is None
        room = await meta.get_room("r")
        assert room is not None and room.audit_floor == 2
        shown = await meta.list_audit(room_id="r", after_id=room.audit_floor)
        assert [e.at for e in shown] == [3.0]
    finally:
        await meta.close()


async def test_migration_0006_gives_existing_users_handles_at_open(tmp_path: Path) -> None:
    """Users made before 0006 get unique handles when the store is opened (SQL alone cannot
    normalize names), oldest first; rooms become rooms of kind 'room'."""
    from collab.db import migrate as m

    path = tmp_path / "c.db"
    conn = sqlite3.connect(path, isolation_level=None)
    m.applied_versions(conn)
    m.apply(conn, [mig for mig in m.load_migrations() if mig.version < 6])
    conn.executescript(
        """
        INSERT INTO users (id, issuer, subject, name, email, created_at) VALUES
            ('u1', 'i', 's1', 'Ann Lee', NULL, 1.0),
            ('u2', 'i', 's2', 'Someone', 'ann.lee@x.org', 2.0),
            ('u3', 'i', 's3', 'Ann Lee', NULL, 3.0),
            ('u4', 'collab:dev', 'dev', 'Dev user', NULL, 4.0),
            ('u5', 'i', 's5', 'Zoë', NULL, 5.0),
            ('u6', 'i', 's6', '', NULL, 6.0),
            ('u7', 'i', 's7', 'Everyone', NULL, 7.0);
        INSERT INTO rooms (id, title, created_by, created_at) VALUES ('r', 'R', 'u1', 1.0);
        INSERT INTO members VALUES ('r', 'u1', 'owner', 1.0);
        """
    )
    conn.close()
    assert "0006_people" in migrate_with_backup(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM users WHERE handle IS NULL").fetchone()[0] == 7
    meta = SQLiteMetaStore(path)
    await meta.open()
    try:
        handles = {u.id: u.handle for u in await meta.list_users()}
        assert handles == {
            "u1": "ann-lee",
            "u2": "ann.lee",
            "u3": "ann-lee-2",
            "u4": "dev",
            "u5": "zoe",
            "u6": "user",
            "u7": "everyone-2",
        }
        assert await meta.assign_missing_handles() == 0
        room = await meta.get_room("r")
        assert room is not None and room.kind == "room" and room.dm_key is None
        assert await meta.list_rooms_for("u1") == [(room, Role.owner)]
        added = await meta.upsert_oidc_user(
            "i", "s8", name="Ann Lee", email=None, email_verified=False, picture=None
        )
        assert added.handle == "ann-lee-3"
    finally:
        await meta.close()
    with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE users SET handle='ANN-LEE' WHERE id='u2'")


async def _traced(meta: SQLiteMetaStore, call: Callable[[], Awaitable[T]]) -> tuple[T, list[str]]:
    """What ``call`` returns, and the statements it ran on the writer (values inlined)."""
    conn = await meta.backend.write(lambda db: cast(SQLiteTx, db).conn)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        return await call(), statements
    finally:
        conn.set_trace_callback(None)


def _plans(path: Path, statements: list[str]) -> list[tuple[str, str]]:
    """(statement, each line of its query plan) on the database at ``path``."""
    conn = sqlite3.connect(path)
    try:
        return [
            (sql, detail)
            for sql in statements
            for *_, detail in conn.execute(f"EXPLAIN QUERY PLAN {sql}")
        ]
    finally:
        conn.close()


async def test_the_purge_reads_finished_deliveries_by_an_index(tmp_path: Path) -> None:
    """Every statement a purge of webhook deliveries runs finds its rows by an index: none
    scans ``webhook_deliveries`` or ``webhook_attempts`` whole. Each batch used to, under the
    one writer: 200,000 retained deliveries held it ~50 ms per batch, attempts' batches each
    reading every finished delivery again (quadratic in a backlog purged in batches)."""
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path)
    await meta.open()
    await meta.create_webhook(Endpoint("e1", "r", "https://e1.example/h", ("*",), "s", "o", T0))
    for i in range(20):
        await meta.enqueue_webhook_event("r", "x", "{}", T0 + i / 100, [f"d{i}"])
    for delivery, _ in await meta.claim_webhook_deliveries(T0, "w", 30, 10):
        attempt = Attempt(delivery.id, 1, T0 + 1, 0.1, status=200)
        await meta.record_webhook_attempt(attempt, "delivered", T0 + 1, Health())
    await meta.delete_webhook("r", "e1", T0 + 2)  # the others fail
    purged, statements = await _traced(
        meta, lambda: meta.purge(audit_before=None, webhooks_before=T0 + 3, batch=5)
    )
    await meta.close()
    assert (purged.webhook_deliveries, purged.webhook_attempts) == (20, 1)
    plans = _plans(path, [sql for sql in statements if "webhook_" in sql])
    assert [(sql, d) for sql, d in plans if d.startswith("SCAN webhook_")] == []


async def test_a_chat_doc_load_archives_by_the_live_messages_not_the_history(
    tmp_path: Path,
) -> None:
    """A chat doc's load (``archive_messages`` with ``keep``) finds the messages to archive
    among the room's live ones (``messages_live``), not on the primary key from the room's
    first seq: that read the room's whole history under the one writer at every load (200,000
    messages: ~24 ms on SQLite, ~17 ms on PostgreSQL)."""
    path = tmp_path / "c.db"
    migrate_with_backup(path)
    meta = SQLiteMetaStore(path)
    await meta.open()
    for i in range(30):
        await meta.post_message(NewMessage("r", f"m{i}", "u1", "", None, f"c{i}", "hi", T0 + i))
    await meta.archive_messages("r", 5)
    _, statements = await _traced(meta, lambda: meta.archive_messages("r", 20, keep=10))
    listed = await meta.list_messages("r", limit=100)
    await meta.close()
    assert [m.seq for m in listed if m.archived] == list(range(1, 21))
    plans = _plans(path, [sql for sql in statements if "SET archived=TRUE" in sql])
    assert plans and all("USING INDEX messages_live" in detail for _, detail in plans), plans
