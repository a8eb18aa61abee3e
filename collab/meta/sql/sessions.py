"""Sessions: the row's id is the digest of the cookie value."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collab.meta.base import digest, new_secret
from collab.meta.sessions import Session
from collab.meta.sql.base import SqlKind, Tx, as_row, insert

_SESSION = "id, user_id, created_at, expires_at, revoked"
_BATCH = 500  # ids per IN (...) query: well under SQLite's bound on variables


def _session(row: tuple[Any, ...]) -> Session:
    return Session(row[0], row[1], row[2], row[3], bool(row[4]))


class SqlSessions(SqlKind):
    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]:
        secret = new_secret()

        def _create(db: Tx) -> Session:
            now = self.clock()
            session = Session(digest(secret), user_id, created_at=now, expires_at=now + ttl)
            insert(db, "sessions", as_row(session))
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
            lambda db: db.execute("UPDATE sessions SET revoked=TRUE WHERE id=?", (session_id,))
        )

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        def _revoke(db: Tx) -> list[str]:
            rows = db.execute(
                "UPDATE sessions SET revoked=TRUE WHERE user_id=? AND NOT revoked AND expires_at>?"
                " RETURNING id",
                (user_id, self.clock()),
            ).fetchall()
            return sorted(row[0] for row in rows)

        return await self._write(_revoke)

    async def live_sessions(self, session_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(session_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = await self._read(
                f"SELECT id FROM sessions WHERE NOT revoked AND expires_at>? AND id IN ({marks})",
                (self.clock(), *batch),
            )
            found.update(row[0] for row in rows)
        return found
