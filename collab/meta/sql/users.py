"""Users: one row per (issuer, subject); ``email`` compares folding ASCII case, and ``handle``
has a unique index (SQLite's migration 0006: COLLATE NOCASE; PostgreSQL's: lower-case only),
so a handle is one user's whatever its case.

A new user's handle is chosen in the transaction that inserts the row (nothing interleaves
with it: nobody else inserts in between; on PostgreSQL a racing insert makes it run again).
Rows made before 0006 get theirs when the store is opened
(:meth:`SqlUsers.assign_missing_handles`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from collab.errors import Conflict, NotFound
from collab.meta.handles import (
    email_local_part,
    existing_user_base,
    handle_base,
    handle_candidates,
    lookup_key,
    parse_handle,
)
from collab.meta.sql.base import IntegrityError, SqlKind, Tx
from collab.meta.users import User, storable

_USER = (
    "id, issuer, subject, name, email, email_verified, picture, disabled, created_at, handle,"
    " private_read_markers"
)
_BATCH = 500  # handles per query: well under SQLite's bound on variables


def _user(row: tuple[Any, ...]) -> User:
    i, iss, sub, name, email, verified, picture, disabled, created, handle, private = row
    return User(
        i,
        iss,
        sub,
        name,
        email,
        bool(verified),
        picture,
        bool(disabled),
        created,
        handle or "",
        bool(private),
    )


def free_handle(db: Tx, base: str) -> str:
    """The first of ``base``'s candidates nobody has (inside the caller's transaction)."""
    for candidate in handle_candidates(base):
        if db.execute("SELECT 1 FROM users WHERE handle=?", (candidate,)).fetchone() is None:
            return candidate
    raise AssertionError("handle_candidates never ends")  # pragma: no cover


class SqlUsers(SqlKind):
    async def upsert_oidc_user(
        self,
        issuer: str,
        subject: str,
        *,
        name: str,
        email: str | None,
        email_verified: bool,
        picture: str | None,
        preferred_handle: str | None = None,
    ) -> User:
        issuer, subject, name = storable(issuer), storable(subject), storable(name)
        email = None if email is None else storable(email)
        picture = None if picture is None else storable(picture)
        profile = (name, email, email_verified, picture)
        query = f"SELECT {_USER} FROM users WHERE issuer=? AND subject=?"

        def _upsert(db: Tx) -> User:
            cur = db.execute(
                "UPDATE users SET name=?, email=?, email_verified=?, picture=?"
                " WHERE issuer=? AND subject=?",
                (*profile, issuer, subject),
            )
            if cur.rowcount == 0:
                base = handle_base(preferred_handle, email_local_part(email), name)
                db.execute(
                    f"INSERT INTO users ({_USER}) VALUES (?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?, FALSE)",
                    (
                        uuid.uuid4().hex,
                        issuer,
                        subject,
                        *profile,
                        self.clock(),
                        free_handle(db, base),
                    ),
                )
            return _user(db.execute(query, (issuer, subject)).fetchone())

        return await self._write(_upsert)

    async def get_user(self, user_id: str) -> User | None:
        rows = await self._lookup(f"SELECT {_USER} FROM users WHERE id=?", (user_id,))
        return _user(rows[0]) if rows else None

    async def find_user_by_verified_email(self, email: str) -> User | None:
        # ASCII case folding, as the memory twin does (base.Dialect.nocase_equals).
        rows = await self._read(
            f"SELECT {_USER} FROM users WHERE {self.dialect.nocase_equals('email')}"
            " AND email_verified"
            " ORDER BY created_at, id LIMIT 1",
            (email,),
        )
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[User]:
        rows = await self._read(f"SELECT {_USER} FROM users ORDER BY created_at, id")
        return [_user(row) for row in rows]

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        def _set(db: Tx) -> None:
            cur = db.execute("UPDATE users SET disabled=? WHERE id=?", (disabled, user_id))
            if cur.rowcount == 0:
                raise NotFound(f"no user {user_id!r}")

        await self._write(_set)

    async def get_user_by_handle(self, handle: str) -> User | None:
        key = lookup_key(handle)
        if key is None:
            return None
        rows = await self._read(f"SELECT {_USER} FROM users WHERE handle=?", (key,))
        return _user(rows[0]) if rows else None

    async def get_users_by_handles(self, handles: Iterable[str]) -> dict[str, User]:
        wanted = sorted({k for k in map(lookup_key, handles) if k is not None})
        found: dict[str, User] = {}
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._read(
                f"SELECT {_USER} FROM users WHERE handle IN ({marks})", tuple(batch)
            )
            found.update((user.handle, user) for user in map(_user, rows))
        return found

    async def set_handle(self, user_id: str, handle: str) -> User:
        wanted = parse_handle(handle)

        def _set(db: Tx) -> User:
            holder = db.execute("SELECT id FROM users WHERE handle=?", (wanted,)).fetchone()
            if holder is not None and holder[0] != user_id:
                raise Conflict("this handle is taken")
            try:
                cur = db.execute("UPDATE users SET handle=? WHERE id=?", (wanted, user_id))
            except IntegrityError:  # another writer, between the two
                raise Conflict("this handle is taken") from None
            if cur.rowcount == 0:
                raise NotFound(f"no user {user_id!r}")
            return _user(db.execute(f"SELECT {_USER} FROM users WHERE id=?", (user_id,)).fetchone())

        return await self._write(_set)

    async def set_private_read_markers(self, user_id: str, private: bool) -> None:
        def _set(db: Tx) -> None:
            cur = db.execute(
                "UPDATE users SET private_read_markers=? WHERE id=?", (private, user_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no user {user_id!r}")

        await self._write(_set)

    async def get_private_read_markers(self, user_ids: Iterable[str]) -> set[str]:
        return await self._ids_where("private_read_markers", user_ids)

    async def get_disabled_users(self, user_ids: Iterable[str]) -> set[str]:
        return await self._ids_where("disabled", user_ids)

    async def _ids_where(self, flag: str, user_ids: Iterable[str]) -> set[str]:
        """Which of these users have the boolean column ``flag`` set, ``_BATCH`` a query."""
        wanted = sorted(set(user_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._read(
                f"SELECT id FROM users WHERE {flag} AND id IN ({marks})", tuple(batch)
            )
            found.update(row[0] for row in rows)
        return found

    async def assign_missing_handles(self) -> int:
        if not await self._read("SELECT 1 FROM users WHERE handle IS NULL LIMIT 1"):
            return 0

        def _assign(db: Tx) -> int:
            rows = db.execute(
                "SELECT id, issuer, email, name FROM users WHERE handle IS NULL"
                " ORDER BY created_at, id"
            ).fetchall()
            for user_id, issuer, email, name in rows:
                handle = free_handle(db, existing_user_base(issuer, email, name))
                db.execute("UPDATE users SET handle=? WHERE id=?", (handle, user_id))
            return len(rows)

        return await self._write(_assign)
