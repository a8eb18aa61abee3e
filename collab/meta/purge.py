"""The purge: deleting what no longer matters, so tables do not grow forever.

Used or ended invites, sessions expired or revoked, tickets used or expired, expired cache
entries, and audit rows older than the retention the caller names. Run by the server every
``purge_interval`` seconds and by ``collab purge``; each kind is deleted in batches, each batch
one short transaction, so a large backlog never holds the one writer for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

BATCH = 5_000


@dataclass(frozen=True)
class Purged:
    """Rows deleted, by kind."""

    invites: int = 0
    sessions: int = 0
    tickets: int = 0
    cache: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        return self.invites + self.sessions + self.tickets + self.cache + self.audit


class Purge(Protocol):
    async def purge(self, *, audit_before: float | None, batch: int = BATCH) -> Purged:
        """Delete invites used, ended or expired, sessions expired or revoked, tickets used or
        expired, expired cache entries, and audit rows with ``at`` before ``audit_before``
        (None keeps every audit row)."""
