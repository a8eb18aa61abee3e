"""Tickets in memory, keyed by the digest of the secret, with a used flag."""

from __future__ import annotations

from dataclasses import replace

from collab.meta.base import Role, digest, new_secret
from collab.meta.memory.base import MemoryKind, StoredTicket
from collab.meta.tickets import Ticket


class MemoryTickets(MemoryKind):
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
        now = self.clock()
        tickets = self.tables.tickets
        for key in [k for k, e in tickets.items() if e.ticket.expires_at <= now]:
            del tickets[key]
        secret = new_secret()
        ticket = Ticket(
            user_id,
            room_id,
            doc,
            role_ceiling,
            now + ttl,
            session_id=session_id,
            api_token_id=api_token_id,
        )
        tickets[digest(secret)] = StoredTicket(ticket)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        now = self.clock()
        entry = self.tables.tickets.get(digest(secret))
        if entry is None or entry.used or entry.ticket.expires_at <= now:
            return None
        ticket = entry.ticket
        session_end = None
        if ticket.session_id is not None:
            session = self.tables.sessions.get(ticket.session_id)
            if session is None or session.revoked or session.expires_at <= now:
                return None
            session_end = session.expires_at
        if ticket.api_token_id is not None:
            token = self.tables.tokens.get(ticket.api_token_id)
            if token is None or token[0].revoked:
                return None
        entry.used = True
        return replace(ticket, session_expires_at=session_end)
