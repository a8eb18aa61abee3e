"""The purge: each kind deleted in batches of ``batch`` rows, one short write transaction per
batch, so no writer is held for long."""

from __future__ import annotations

from collab.meta.purge import BATCH, Purged
from collab.meta.sql.base import SqlKind, Tx

_FINISHED = "state<>'pending' AND finished_at<?"  # a webhook delivery past its retention
# A pending delivery whose endpoint is deleted (collab.meta.purge): failed, not deleted.
_ORPHANS = (
    "UPDATE webhook_deliveries SET state='failed', finished_at=?, claimed_by=NULL,"
    " claimed_until=NULL WHERE id IN (SELECT d.id FROM webhook_deliveries d"
    " WHERE d.state='pending' AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e"
    " WHERE e.id=d.endpoint_id AND NOT e.deleted) LIMIT ?)"
)

# What may go, by table: (key columns, condition on ``?`` = the cutoff: now, or a retention's).
_DEAD = {
    "invites": ("id", "used_by IS NOT NULL OR closed_reason IS NOT NULL OR expires_at<=?"),
    "sessions": ("id", "revoked OR expires_at<=?"),
    "tickets": ("digest", "used OR expires_at<=?"),
    "cache": ("key", "expires_at<=?"),
    "audit": ("id", "at<?"),
    "revoked_room_tokens": ("room_id, jti", "expires_at<=?"),
    # A delivery's attempts before the delivery, so an interrupted purge orphans none.
    "webhook_attempts": (
        "delivery_id, n",
        f"delivery_id IN (SELECT id FROM webhook_deliveries WHERE {_FINISHED})",
    ),
    "webhook_deliveries": ("id", _FINISHED),
}


class SqlPurge(SqlKind):
    async def purge(
        self,
        *,
        audit_before: float | None,
        webhooks_before: float | None = None,
        batch: int = BATCH,
    ) -> Purged:
        now = self.clock()
        # The tables kept for a retention the caller names (None: kept forever).
        retained = {
            "audit": audit_before,
            "webhook_attempts": webhooks_before,
            "webhook_deliveries": webhooks_before,
        }
        # Orphans are failed (finished now), to go with a later purge past the retention.
        counts = {"webhook_orphans": await self._batches(_ORPHANS, now, batch)}
        for table in _DEAD:
            cutoff = retained[table] if table in retained else now
            counts[table] = 0 if cutoff is None else await self._purge_table(table, cutoff, batch)
        return Purged(**counts)

    async def _purge_table(self, table: str, cutoff: float, batch: int) -> int:
        key, condition = _DEAD[table]
        sql = (
            f"DELETE FROM {table} WHERE ({key}) IN"
            f" (SELECT {key} FROM {table} WHERE {condition} LIMIT ?)"
        )
        return await self._batches(sql, cutoff, batch)

    async def _batches(self, sql: str, cutoff: float, batch: int) -> int:
        """Run ``sql`` (parameters: ``cutoff``, ``batch``) until it changes fewer than
        ``batch`` rows, each run its own transaction; the rows changed."""

        def _batch(db: Tx) -> int:
            return int(db.execute(sql, (cutoff, batch)).rowcount)

        total = 0
        while True:
            changed = await self._write(_batch)
            total += changed
            if changed < batch:
                return total
