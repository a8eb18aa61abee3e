"""Revoked room tokens: the ids (``jti``) of signed room tokens that end before they expire.

Room tokens themselves are stateless JWTs (``collab.auth.tokens``); only a revocation is
stored, keyed by room and ``jti``, so an owner's revocation can only ever reach tokens of the
room they own. A revocation is kept until ``expires_at``, past which no token it names is valid.

How long that must be: a token is valid while ``now < exp`` and ``now`` is within
``token_max_ttl`` (the verifying node's setting now) of the second of its ``iat``, and it was
minted to live at most the minting node's ``token_max_ttl`` then (``exp`` rounded up to the
second). Neither the current setting of the revoking node nor of any one node bounds that: a
token minted under 3600 s, revoked after a restart with 600 s and its revocation purged 600 s
later, was valid again once the setting went back to 3600 s (or on a node still running with
3600 s). So the store keeps a high-water mark of the token lifetimes ever in force
(``raise_token_ttl_mark``): every server raises it to its ``token_max_ttl`` when it starts,
before it mints or verifies anything, and ``collab token create`` to the lifetime it mints
with; the mark is never lowered. A revocation is kept until ``now`` plus the mark and one
second (read when revoking, on whichever node; the second because ``exp`` is rounded up to
whole seconds), which is at least the ``exp`` of any token it can name. Its cost: once a store
has run with a long ``token_max_ttl``, revocations are kept that long (a row each) even after
the setting is lowered. Rejected alternatives: storing every minted token (a write per mint, a
row per token out: tokens would no longer be stateless), and bounding tokens by the current
setting alone (the hole above: a later raise brings a purged one back).
"""

from __future__ import annotations

from typing import Protocol

TOKEN_MAX_TTL = "token_max_ttl"  # the high-water mark's name in the store


class RoomTokenRevocations(Protocol):
    async def revoke_room_token(
        self, room_id: str, jti: str, revoked_by: str, expires_at: float
    ) -> None:
        """Revoke the token ``jti`` of ``room_id`` (idempotent: a second revocation is kept as
        the first, with the later ``expires_at``)."""

    async def room_token_revoked(self, room_id: str, jti: str) -> bool:
        """Whether the token ``jti`` of ``room_id`` was revoked."""

    async def raise_token_ttl_mark(self, ttl: float) -> float:
        """Record that room tokens may be minted to live ``ttl`` seconds: the high-water mark
        becomes the higher of itself and ``ttl``, in one step (nodes raising it at once keep
        the highest). The mark after it."""

    async def token_ttl_mark(self) -> float:
        """The longest room token lifetime ever recorded (0 before any)."""
