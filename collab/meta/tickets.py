"""Single-use WebSocket tickets, valid for seconds: a credential a page can put in a URL.

A ticket names its user and room, optionally one doc and a role ceiling; consuming it is atomic,
so of concurrent uses exactly one wins. A ticket only bounds its handshake: it also names the
session or personal API token that minted it, which must still be live when it is used, and
on which the socket it opens then lives (its ``session_expires_at``, its revocation).
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
    session_id: str | None = None  # the session that minted it
    api_token_id: str | None = None  # or the personal API token
    session_expires_at: float | None = None  # that session's end, as of consuming the ticket


class Tickets(Protocol):
    async def create_ticket(
        self,
        user_id: str,
        room_id: str,
        doc: str | None,
        role_ceiling: Role | None,
        ttl: float,
        *,
        session_id: str | None = None,
        api_token_id: str | None = None,
    ) -> str:
        """A new ticket's secret (expired tickets are purged on the way); ``session_id`` or
        ``api_token_id`` names the credential that minted it (neither: the dev token)."""

    async def consume_ticket(self, secret: str) -> Ticket | None:
        """Atomically use a ticket; None when unknown, used or expired, or when the session or
        API token that minted it has ended since."""
