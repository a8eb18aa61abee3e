"""Revoked room tokens in memory: (room, jti) -> the revocation's ``expires_at``; the
high-water mark of token lifetimes in ``Tables.high_water_marks``."""

from __future__ import annotations

from collab.meta.memory.base import MemoryKind
from collab.meta.room_tokens import TOKEN_MAX_TTL


class MemoryRoomTokenRevocations(MemoryKind):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        revoked = self.tables.revoked_room_tokens
        revoked[(room_id, jti)] = max(expires_at, revoked.get((room_id, jti), expires_at))

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        return (room_id, jti) in self.tables.revoked_room_tokens

    async def raise_token_ttl_mark(self, ttl: float) -> float:
        marks = self.tables.high_water_marks
        marks[TOKEN_MAX_TTL] = max(float(ttl), marks.get(TOKEN_MAX_TTL, 0.0))
        return marks[TOKEN_MAX_TTL]

    async def token_ttl_mark(self) -> float:
        return self.tables.high_water_marks.get(TOKEN_MAX_TTL, 0.0)
