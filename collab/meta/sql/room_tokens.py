"""Revoked room tokens: one row per (room, jti)."""

from __future__ import annotations

from collab.meta.sql.base import SqlKind


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
