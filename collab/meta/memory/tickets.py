"""Tickets in memory, keyed by the digest of the secret, with a used flag."""

from __future__ import annotations

from collab.meta.base import Role, digest, new_secret
from collab.meta.memory.base import MemoryKind, StoredTicket
from collab.meta.tickets import Ticket


class MemoryTickets(MemoryKind):
    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str:
        now = self.clock()
        tickets = self.tables.tickets
        for key in [k for k, e in tickets.items() if e.ticket.expires_at <= now]:
            del tickets[key]
        secret = new_secret()
        ticket = Ticket(user_id, room_id, doc, role_ceiling, now + ttl)
        tickets[digest(secret)] = StoredTicket(ticket)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        entry = self.tables.tickets.get(digest(secret))
        if entry is None or entry.used or entry.ticket.expires_at <= self.clock():
            return None
        entry.used = True
        return entry.ticket
