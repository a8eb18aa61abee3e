"""Revoked room tokens: one row per (room, jti); the high-water mark of token lifetimes is a
row of ``high_water_marks``."""

from __future__ import annotations

from collab.meta.room_tokens import TOKEN_MAX_TTL
from collab.meta.sql.base import SqlKind, Tx


class SqlRoomTokenRevocations(SqlKind):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        now = self.clock()
        later = self.dialect.greatest("revoked_room_tokens.expires_at", "excluded.expires_at")
        await self._write(
            lambda db: db.execute(
                "INSERT INTO revoked_room_tokens (room_id, jti, revoked_by, revoked_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, jti) DO UPDATE"
                f" SET expires_at={later}",
                (room_id, jti, revoked_by, now, expires_at),
            )
        )

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        rows = await self._lookup(
            "SELECT 1 FROM revoked_room_tokens WHERE room_id=? AND jti=?", (room_id, jti)
        )
        return bool(rows)

    async def raise_token_ttl_mark(self, ttl: float) -> float:
        higher = self.dialect.greatest("high_water_marks.value", "excluded.value")

        def _raise(db: Tx) -> float:
            # One statement: racing nodes (PostgreSQL retries the loser) keep the highest.
            row = db.execute(
                "INSERT INTO high_water_marks (name, value) VALUES (?, ?)"
                f" ON CONFLICT (name) DO UPDATE SET value={higher} RETURNING value",
                (TOKEN_MAX_TTL, float(ttl)),
            ).fetchone()
            return float(row[0])

        return await self._write(_raise)

    async def token_ttl_mark(self) -> float:
        rows = await self._lookup(
            "SELECT value FROM high_water_marks WHERE name=?", (TOKEN_MAX_TTL,)
        )
        return float(rows[0][0]) if rows else 0.0
