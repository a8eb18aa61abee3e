"""Revoked room tokens in SQLite: one row per (room, jti)."""

from __future__ import annotations

from collab.meta.sqlite.base import SQLiteKind


class SQLiteRoomTokenRevocations(SQLiteKind):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        now = self.clock()
        await self._write(
            lambda db: db.execute(
                "INSERT INTO revoked_room_tokens (room_id, jti, revoked_by, revoked_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, jti) DO UPDATE"
                " SET expires_at=max(expires_at, excluded.expires_at)",
                (room_id, jti, revoked_by, now, expires_at),
            )
        )

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        rows = await self._read(
            "SELECT 1 FROM revoked_room_tokens WHERE room_id=? AND jti=?", (room_id, jti)
        )
        return bool(rows)
