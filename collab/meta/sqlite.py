"""SQLite MetaStore: one writer connection behind one lock, a reader connection for reads.

Every write runs in its own ``BEGIN IMMEDIATE`` transaction on a worker thread while the
asyncio lock is held, so read-check-write sequences (redeem an invite, consume a ticket) are
atomic without SQL tricks: nothing else writes in between. Reads use a second connection (WAL
readers never wait for the writer). The schema is ``migrations/sqlite/0002_meta.sql``; the app
applies migrations before opening, and a database with pending ones is refused.

A room's members, invites and tickets are deleted in the room's own transaction (no foreign
keys, so nothing depends on ``PRAGMA foreign_keys``). sqlite-utils is used for plain inserts and
upserts; only this module imports it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sqlite_utils

from collab.errors import Conflict, NotFound
from collab.meta.base import (
    ApiToken,
    AuditEvent,
    Invite,
    Member,
    Role,
    RoomRecord,
    Session,
    Ticket,
    User,
    digest,
    new_secret,
)
from collab.store import migrate
from collab.store.base import StoreError
from collab.store.sqlite import connect

T = TypeVar("T")

_USER = "id, issuer, subject, name, email, email_verified, picture, disabled, created_at"
_SESSION = "id, user_id, created_at, expires_at, revoked"
_ROOM = "id, title, created_by, created_at, gc"
_TOKEN = "id, user_id, name, created_at, revoked, last_used_at"


def _row(record: Any, **extra: Any) -> dict[str, Any]:
    """A record as a table row: roles by name (readable, CHECKed in SQL), plus ``extra``."""
    row = {k: v.name if isinstance(v, Role) else v for k, v in asdict(record).items()}
    return {**row, **extra}


def _user(row: tuple[Any, ...]) -> User:
    i, iss, sub, name, email, verified, picture, disabled, created = row
    return User(i, iss, sub, name, email, bool(verified), picture, bool(disabled), created)


def _session(row: tuple[Any, ...]) -> Session:
    return Session(row[0], row[1], row[2], row[3], bool(row[4]))


def _room(row: tuple[Any, ...]) -> RoomRecord:
    return RoomRecord(row[0], row[1], row[2], row[3], bool(row[4]))


def _token(row: tuple[Any, ...]) -> ApiToken:
    return ApiToken(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


def _audit(row: tuple[Any, ...]) -> AuditEvent:
    i, at, action, actor, room_id, target, detail, ip = row
    return AuditEvent(at, action, actor, room_id, target, json.loads(detail), ip, i)


class SQLiteMetaStore:
    """The MetaStore in the same SQLite file as the documents; ``clock`` is injectable."""

    def __init__(
        self, path: Path, synchronous: str = "FULL", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.clock = clock
        self._db: sqlite_utils.Database | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._read_limiter = anyio.CapacityLimiter(1)

    async def open(self) -> None:
        def _open() -> tuple[sqlite_utils.Database, sqlite3.Connection]:
            writer = connect(self.path, self.synchronous)
            try:
                if migrate.pending(writer):
                    raise StoreError(f"{self.path} has pending migrations: run `collab migrate`")
            except BaseException:
                writer.close()
                raise
            db = sqlite_utils.Database(writer, execute_plugins=False)
            return db, connect(self.path, self.synchronous)

        self._db, self._reader = await anyio.to_thread.run_sync(_open)

    async def close(self) -> None:
        async with self._write_lock:
            if self._db is not None:
                self._db.conn.close()
            if self._reader is not None:
                self._reader.close()
            self._db = self._reader = None

    async def _write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer, alone."""

        def _run() -> T:
            db = self._db
            if db is None:
                raise StoreError("store is closed")
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.conn.execute("ROLLBACK")
                raise
            db.conn.execute("COMMIT")
            return result

        async with self._write_lock:
            return await anyio.to_thread.run_sync(_run)

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        def _run() -> list[tuple[Any, ...]]:
            if self._reader is None:
                raise StoreError("store is closed")
            return self._reader.execute(sql, params).fetchall()

        return await anyio.to_thread.run_sync(_run, limiter=self._read_limiter)

    # users

    async def upsert_oidc_user(
        self,
        issuer: str,
        subject: str,
        *,
        name: str,
        email: str | None,
        email_verified: bool,
        picture: str | None,
    ) -> User:
        profile = (name, email, email_verified, picture)

        def _upsert(db: sqlite_utils.Database) -> User:
            db.execute(
                f"INSERT INTO users ({_USER}) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)"
                " ON CONFLICT (issuer, subject) DO UPDATE SET name=excluded.name,"
                " email=excluded.email, email_verified=excluded.email_verified,"
                " picture=excluded.picture",
                (uuid.uuid4().hex, issuer, subject, *profile, self.clock()),
            )
            query = f"SELECT {_USER} FROM users WHERE issuer=? AND subject=?"
            return _user(db.execute(query, (issuer, subject)).fetchone())

        return await self._write(_upsert)

    async def get_user(self, user_id: str) -> User | None:
        rows = await self._read(f"SELECT {_USER} FROM users WHERE id=?", (user_id,))
        return _user(rows[0]) if rows else None

    async def find_user_by_verified_email(self, email: str) -> User | None:
        # The column is COLLATE NOCASE: ASCII case folding, as the memory twin does.
        rows = await self._read(
            f"SELECT {_USER} FROM users WHERE email=? AND email_verified"
            " ORDER BY created_at, id LIMIT 1",
            (email,),
        )
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[User]:
        rows = await self._read(f"SELECT {_USER} FROM users ORDER BY created_at, id")
        return [_user(row) for row in rows]

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        def _set(db: sqlite_utils.Database) -> None:
            cur = db.execute("UPDATE users SET disabled=? WHERE id=?", (disabled, user_id))
            if cur.rowcount == 0:
                raise NotFound(f"no user {user_id!r}")

        await self._write(_set)

    # sessions

    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> Session:
            now = self.clock()
            session = Session(digest(secret), user_id, created_at=now, expires_at=now + ttl)
            db.table("sessions").insert(_row(session))
            return session

        return await self._write(_create), secret

    async def get_session(self, secret: str) -> Session | None:
        rows = await self._read(
            f"SELECT {_SESSION} FROM sessions WHERE id=? AND NOT revoked AND expires_at>?",
            (digest(secret), self.clock()),
        )
        return _session(rows[0]) if rows else None

    async def revoke_session(self, session_id: str) -> None:
        await self._write(
            lambda db: db.execute("UPDATE sessions SET revoked=1 WHERE id=?", (session_id,))
        )

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        def _revoke(db: sqlite_utils.Database) -> list[str]:
            rows = db.execute(
                "UPDATE sessions SET revoked=1 WHERE user_id=? AND NOT revoked AND expires_at>?"
                " RETURNING id",
                (user_id, self.clock()),
            ).fetchall()
            return sorted(row[0] for row in rows)

        return await self._write(_revoke)

    # rooms and members

    async def create_room(self, room_id: str, title: str, owner_id: str) -> RoomRecord:
        def _create(db: sqlite_utils.Database) -> RoomRecord:
            if db.execute("SELECT 1 FROM rooms WHERE id=?", (room_id,)).fetchone():
                raise Conflict(f"room {room_id!r} exists")
            room = RoomRecord(room_id, title, created_by=owner_id, created_at=self.clock())
            db.table("rooms").insert(_row(room))
            owner = Member(room_id, owner_id, Role.owner, room.created_at)
            db.table("members").upsert(_row(owner), pk=("room_id", "user_id"))
            return room

        return await self._write(_create)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        rows = await self._read(f"SELECT {_ROOM} FROM rooms WHERE id=?", (room_id,))
        return _room(rows[0]) if rows else None

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        rows = await self._read(
            "SELECT r.id, r.title, r.created_by, r.created_at, r.gc, m.role"
            " FROM members m JOIN rooms r ON r.id = m.room_id"
            " WHERE m.user_id=? ORDER BY r.created_at, r.id",
            (user_id,),
        )
        return [(_room(row), Role[row[5]]) for row in rows]

    async def count_rooms_created_by(self, user_id: str) -> int:
        rows = await self._read("SELECT count(*) FROM rooms WHERE created_by=?", (user_id,))
        return int(rows[0][0])

    async def rename_room(self, room_id: str, title: str) -> None:
        def _rename(db: sqlite_utils.Database) -> None:
            if db.execute("UPDATE rooms SET title=? WHERE id=?", (title, room_id)).rowcount == 0:
                raise NotFound(f"no room {room_id!r}")

        await self._write(_rename)

    async def delete_room(self, room_id: str) -> None:
        def _delete(db: sqlite_utils.Database) -> None:
            for table in ("members", "invites", "tickets"):
                db.execute(f"DELETE FROM {table} WHERE room_id=?", (room_id,))
            db.execute("DELETE FROM rooms WHERE id=?", (room_id,))

        await self._write(_delete)

    async def get_member(self, room_id: str, user_id: str) -> Member | None:
        rows = await self._read(
            "SELECT role, added_at FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
        )
        return Member(room_id, user_id, Role[rows[0][0]], rows[0][1]) if rows else None

    async def list_members(self, room_id: str) -> list[Member]:
        rows = await self._read(
            "SELECT user_id, role, added_at FROM members WHERE room_id=?"
            " ORDER BY added_at, user_id",
            (room_id,),
        )
        return [Member(room_id, user, Role[role], added) for user, role, added in rows]

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        def _set(db: sqlite_utils.Database) -> Member:
            if not db.execute("SELECT 1 FROM rooms WHERE id=?", (room_id,)).fetchone():
                raise NotFound(f"no room {room_id!r}")
            return self._put_member(db, room_id, user_id, role, lower=True)

        return await self._write(_set)

    def _put_member(
        self, db: sqlite_utils.Database, room_id: str, user_id: str, role: Role, *, lower: bool
    ) -> Member:
        """Insert or update a membership (keeping added_at); ``lower=False`` only raises it."""
        row = db.execute(
            "SELECT role, added_at FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
        ).fetchone()
        if row is None:
            member = Member(room_id, user_id, role, self.clock())
        elif lower or role > Role[row[0]]:
            member = Member(room_id, user_id, role, row[1])
        else:
            return Member(room_id, user_id, Role[row[0]], row[1])
        db.table("members").upsert(_row(member), pk=("room_id", "user_id"))
        return member

    async def remove_member(self, room_id: str, user_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "DELETE FROM members WHERE room_id=? AND user_id=?", (room_id, user_id)
            )
        )

    # invites

    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> Invite:
            if not db.execute("SELECT 1 FROM rooms WHERE id=?", (room_id,)).fetchone():
                raise NotFound(f"no room {room_id!r}")
            invite = Invite(uuid.uuid4().hex, room_id, role, created_by, self.clock() + ttl)
            db.table("invites").insert(_row(invite, digest=digest(secret)))
            return invite

        return await self._write(_create), secret

    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        def _redeem(db: sqlite_utils.Database) -> Member:
            now = self.clock()
            row = db.execute(
                "SELECT i.id, i.room_id, i.role FROM invites i JOIN rooms r ON r.id = i.room_id"
                " WHERE i.digest=? AND i.used_by IS NULL AND i.expires_at>?",
                (digest(secret), now),
            ).fetchone()
            if row is None:
                raise NotFound("unknown, used or expired invite")
            db.execute("UPDATE invites SET used_by=?, used_at=? WHERE id=?", (user_id, now, row[0]))
            return self._put_member(db, row[1], user_id, Role[row[2]], lower=False)

        return await self._write(_redeem)

    # personal API tokens

    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> ApiToken:
            token = ApiToken(uuid.uuid4().hex, user_id, name, created_at=self.clock())
            db.table("api_tokens").insert(_row(token, digest=digest(secret)))
            return token

        return await self._write(_create), secret

    async def find_api_token(self, secret: str) -> ApiToken | None:
        def _find(db: sqlite_utils.Database) -> ApiToken | None:
            row = db.execute(
                f"UPDATE api_tokens SET last_used_at=? WHERE digest=? AND NOT revoked"
                f" RETURNING {_TOKEN}",
                (self.clock(), digest(secret)),
            ).fetchone()
            return _token(row) if row else None

        return await self._write(_find)

    async def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = await self._read(
            f"SELECT {_TOKEN} FROM api_tokens WHERE user_id=? ORDER BY created_at, id", (user_id,)
        )
        return [_token(row) for row in rows]

    async def revoke_api_token(self, token_id: str, user_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "UPDATE api_tokens SET revoked=1 WHERE id=? AND user_id=?", (token_id, user_id)
            )
        )

    # tickets

    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> None:
            now = self.clock()
            db.execute("DELETE FROM tickets WHERE expires_at<=?", (now,))
            ticket = Ticket(user_id, room_id, doc, role_ceiling, now + ttl)
            db.table("tickets").insert(_row(ticket, digest=digest(secret)))

        await self._write(_create)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        def _consume(db: sqlite_utils.Database) -> Ticket | None:
            row = db.execute(
                "UPDATE tickets SET used=1 WHERE digest=? AND NOT used AND expires_at>?"
                " RETURNING user_id, room_id, doc, role_ceiling, expires_at",
                (digest(secret), self.clock()),
            ).fetchone()
            if row is None:
                return None
            ceiling = Role[row[3]] if row[3] is not None else None
            return Ticket(row[0], row[1], row[2], ceiling, row[4])

        return await self._write(_consume)

    # cache

    async def cache_get(self, key: str) -> str | None:
        rows = await self._read(
            "SELECT value FROM cache WHERE key=? AND expires_at>?", (key, self.clock())
        )
        return str(rows[0][0]) if rows else None

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        def _set(db: sqlite_utils.Database) -> None:
            now = self.clock()
            db.execute("DELETE FROM cache WHERE expires_at<=?", (now,))
            db.table("cache").upsert(
                {"key": key, "value": value, "expires_at": now + ttl}, pk="key"
            )

        await self._write(_set)

    async def cache_delete(self, key: str) -> None:
        await self._write(lambda db: db.execute("DELETE FROM cache WHERE key=?", (key,)))

    # audit

    async def record(self, event: AuditEvent) -> None:
        row = _row(event, id=None, detail=json.dumps(event.detail))
        await self._write(lambda db: db.table("audit").insert(row))

    async def list_audit(
        self, *, room_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEvent]:
        where: list[str] = ["1"]
        params: list[Any] = []
        if room_id is not None:
            where.append("room_id=?")
            params.append(room_id)
        if before_id is not None:
            where.append("id<?")
            params.append(before_id)
        rows = await self._read(
            "SELECT id, at, action, actor, room_id, target, detail, ip FROM audit"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [_audit(row) for row in rows]
