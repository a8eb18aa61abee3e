"""Single-use WebSocket tickets, valid for seconds: a credential a page can put in a URL.

A ticket names its user and room, optionally one doc and a role ceiling; consuming it is atomic,
so of concurrent uses exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collab.meta.base import Role


@dataclass(frozen=True)
class Ticket:
    user_id: str
    room_id: str
    doc: str | None
    role_ceiling: Role | None
    expires_at: float


class Tickets(Protocol):
    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str:
        """A new ticket's secret (expired tickets are purged on the way)."""

    async def consume_ticket(self, secret: str) -> Ticket | None:
        """Atomically use a ticket; None when unknown, used or expired."""
