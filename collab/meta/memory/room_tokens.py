"""Revoked room tokens in memory: (room, jti) -> the revocation's ``expires_at``."""

from __future__ import annotations

from collab.meta.memory.base import MemoryKind


class MemoryRoomTokenRevocations(MemoryKind):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        revoked = self.tables.revoked_room_tokens
        revoked[(room_id, jti)] = max(expires_at, revoked.get((room_id, jti), expires_at))

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        return (room_id, jti) in self.tables.revoked_room_tokens
