"""Users in SQLite: one row per (issuer, subject); ``email`` is COLLATE NOCASE."""

from __future__ import annotations

import uuid
from typing import Any

import sqlite_utils

from collab.errors import NotFound
from collab.meta.sqlite.base import SQLiteKind
from collab.meta.users import User

_USER = "id, issuer, subject, name, email, email_verified, picture, disabled, created_at"


def _user(row: tuple[Any, ...]) -> User:
    i, iss, sub, name, email, verified, picture, disabled, created = row
    return User(i, iss, sub, name, email, bool(verified), picture, bool(disabled), created)


class SQLiteUsers(SQLiteKind):
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
