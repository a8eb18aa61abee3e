"""Revoked room tokens: the ids (``jti``) of signed room tokens that end before they expire.

Room tokens themselves are stateless JWTs (``collab.auth.tokens``); only a revocation is
stored, keyed by room and ``jti``, so an owner's revocation can only ever reach tokens of the
room they own. A revocation is kept until ``expires_at``, past which no token it names is valid.
"""

from __future__ import annotations

from typing import Protocol


class RoomTokenRevocations(Protocol):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        """Revoke the token ``jti`` of ``room_id`` (idempotent: a second revocation is kept as
        the first, with the later ``expires_at``)."""

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        """Whether the token ``jti`` of ``room_id`` was revoked."""
