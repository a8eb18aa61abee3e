"""The purge in memory: the same rules as SQLite's, in one step."""

from __future__ import annotations

from dataclasses import replace

from collab.meta.memory.base import MemoryKind
from collab.meta.purge import BATCH, Purged


class MemoryPurge(MemoryKind):
    async def purge(
        self,
        *,
        audit_before: float | None,
        webhooks_before: float | None = None,
        batch: int = BATCH,
    ) -> Purged:
        t, now = self.tables, self.clock()
        invites = [k for k, i in t.invites.items() if i.status(now) != "pending"]
        sessions = [k for k, s in t.sessions.items() if s.revoked or s.expires_at <= now]
        tickets = [k for k, e in t.tickets.items() if e.used or e.ticket.expires_at <= now]
        cache = [k for k, (_, expires_at) in t.cache.items() if expires_at <= now]
        revoked = [k for k, until in t.revoked_room_tokens.items() if until <= now]
        for key in invites:
            del t.invites[key]
        for key in sessions:
            del t.sessions[key]
        for key in tickets:
            del t.tickets[key]
        for key in cache:
            del t.cache[key]
        for pair in revoked:
            del t.revoked_room_tokens[pair]
        kept = t.audit if audit_before is None else [e for e in t.audit if e.at >= audit_before]
        audit, t.audit = len(t.audit) - len(kept), kept
        orphans = 0
        for delivery in list(t.deliveries.values()):  # its endpoint deleted (collab.meta.purge)
            if delivery.state == "pending" and delivery.endpoint_id not in t.webhooks:
                t.deliveries[delivery.id] = replace(delivery, state="failed", finished_at=now)
                t.delivery_claims.pop(delivery.id, None)
                orphans += 1
        deliveries = attempts = 0
        if webhooks_before is not None:
            for delivery in list(t.deliveries.values()):
                finished = delivery.finished_at
                if (
                    delivery.state != "pending"
                    and finished is not None
                    and finished < webhooks_before
                ):
                    attempts += len(t.attempts.pop(delivery.id, []))
                    t.delivery_claims.pop(delivery.id, None)
                    del t.deliveries[delivery.id]
                    deliveries += 1
        return Purged(
            len(invites),
            len(sessions),
            len(tickets),
            len(cache),
            audit,
            len(revoked),
            webhook_deliveries=deliveries,
            webhook_attempts=attempts,
            webhook_orphans=orphans,
        )
