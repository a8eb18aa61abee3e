"""Invites: a link that grants a role in a room once, until it expires.

Redeeming is atomic and single use, and never lowers a role the user already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collab.meta.base import Role
from collab.meta.rooms import Member


@dataclass(frozen=True)
class Invite:
    id: str
    room_id: str
    role: Role
    created_by: str
    expires_at: float
    used_by: str | None = None


class Invites(Protocol):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]:
        """A new invite and its secret (the link's code); errors.NotFound when there is no such
        room."""

    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        """Single use, atomically; errors.NotFound when unknown, used or expired."""
