"""The purge: each kind deleted in batches of about ``batch`` rows, one short write transaction
per batch, so no writer is held for long.

Finished webhook deliveries are found by ``webhook_deliveries_finished`` (``finished_at`` of
the rows not pending; ``migrations/sqlite/0014_scale_indexes.sql``), oldest first, and each
batch deletes its deliveries and then their attempts by id, in one transaction: a batch reads
the rows it deletes, not the retention's whole table. (It used to scan every retained delivery
per batch, attempts' batches included, under the one writer.)"""

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
}
# Finished deliveries past the retention, oldest first (by the partial index), with their
# attempts' count: a transaction takes as many as make ``batch`` rows with their attempts.
FINISHED_BATCH = (
    "SELECT id, (SELECT count(*) FROM webhook_attempts WHERE delivery_id = webhook_deliveries.id)"
    f" FROM webhook_deliveries WHERE {_FINISHED} ORDER BY finished_at LIMIT ?"
)
_IDS = 500  # ids per IN (...): well under SQLite's bound on parameters


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
        retained = {"audit": audit_before}
        # Orphans are failed (finished now), to go with a later purge past the retention.
        counts = {"webhook_orphans": await self._batches(_ORPHANS, now, batch)}
        for table in _DEAD:
            cutoff = retained[table] if table in retained else now
            counts[table] = 0 if cutoff is None else await self._purge_table(table, cutoff, batch)
        if webhooks_before is not None:
            attempts, deliveries = await self._purge_deliveries(webhooks_before, batch)
            counts.update(webhook_attempts=attempts, webhook_deliveries=deliveries)
        return Purged(**counts)

    async def _purge_deliveries(self, cutoff: float, batch: int) -> tuple[int, int]:
        """Finished deliveries before ``cutoff`` and their attempts, about ``batch`` rows a
        transaction (a delivery is deleted only if still finished: one redelivered meanwhile
        stays, with its attempts); (attempts, deliveries) deleted."""

        def _batch(db: Tx) -> tuple[bool, int, int]:
            found = db.execute(FINISHED_BATCH, (cutoff, batch)).fetchall()
            ids: list[str] = []
            rows = 0
            for delivery_id, attempts in found:
                if ids and rows + 1 + attempts > batch:
                    break
                ids.append(delivery_id)
                rows += 1 + attempts
            gone = _delete_finished(db, ids, cutoff)
            attempts = 0
            for start in range(0, len(gone), _IDS):
                chunk = gone[start : start + _IDS]
                marks = ", ".join("?" * len(chunk))
                cursor = db.execute(
                    f"DELETE FROM webhook_attempts WHERE delivery_id IN ({marks})", chunk
                )
                attempts += int(cursor.rowcount)
            return len(found) == batch or len(ids) < len(found), attempts, len(gone)

        attempts = deliveries = 0
        more = True
        while more:
            more, gone_attempts, gone = await self._write(_batch)
            attempts += gone_attempts
            deliveries += gone
        return attempts, deliveries

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


def _delete_finished(db: Tx, ids: list[str], cutoff: float) -> list[str]:
    """Delete the deliveries of ``ids`` still finished before ``cutoff``; the ids deleted."""
    gone: list[str] = []
    for start in range(0, len(ids), _IDS):
        chunk = ids[start : start + _IDS]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"DELETE FROM webhook_deliveries WHERE id IN ({marks}) AND {_FINISHED} RETURNING id",
            (*chunk, cutoff),
        ).fetchall()
        gone.extend(row[0] for row in rows)
    return gone
