"""The purge: deleting what no longer matters, so tables do not grow forever.

Used or ended invites, sessions expired or revoked, tickets used or expired, expired cache
entries, room token revocations past the life of any token they name, and audit rows and
finished webhook deliveries (with their attempts) older than the retentions the caller names.
It also ends orphaned webhook deliveries: pending ones whose endpoint is deleted. Deleting an
endpoint (or its room) fails its pending deliveries, but on PostgreSQL a chat write racing the
deletion (READ COMMITTED, ``collab.meta.sql.webhooks``) may still commit one the deletion did
not see; no claim takes it (claims join live endpoints), and the retention takes finished
deliveries only, so it stayed pending for ever. The purge fails it, as the deletion would
have, and the retention then deletes it with the others.
Run by the server every
``purge_interval`` seconds and by ``collab purge``; each kind is deleted in batches, each batch
one short transaction, so a large backlog never holds the one writer for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BATCH = 5_000


@dataclass(frozen=True)
class Purged:
    """Rows deleted, by kind; ``webhook_orphans``: pending deliveries of deleted endpoints
    failed (deleted later, with the retention)."""

    invites: int = 0
    sessions: int = 0
    tickets: int = 0
    cache: int = 0
    audit: int = 0
    revoked_room_tokens: int = 0
    webhook_deliveries: int = 0
    webhook_attempts: int = 0
    webhook_orphans: int = 0

    @property
    def total(self) -> int:
        kinds = (self.invites, self.sessions, self.tickets, self.cache, self.audit)
        webhooks = self.webhook_deliveries + self.webhook_attempts + self.webhook_orphans
        return sum(kinds) + self.revoked_room_tokens + webhooks


def retention_cutoff(now: float, retention: float) -> float | None:
    """What a retention of ``retention`` seconds keeps: rows from ``now - retention`` on
    (None: 0 keeps every row)."""
    return now - retention if retention > 0 else None


class Purge(Protocol):
    async def purge(
        self,
        *,
        audit_before: float | None,
        webhooks_before: float | None = None,
        batch: int = BATCH,
    ) -> Purged:
        """Delete invites used, ended or expired, sessions expired or revoked, tickets used or
        expired, expired cache entries, room token revocations past their ``expires_at``,
        audit rows with ``at`` before ``audit_before`` (None keeps every audit row), and
        webhook deliveries delivered or given up (not pending) with ``finished_at`` before
        ``webhooks_before``, their attempts first (None keeps every delivery); and fail
        (``finished_at`` now) the pending deliveries whose endpoint is deleted, whatever the
        retentions."""
