"""The purge: each kind deleted in batches of ``batch`` rows, one short write transaction per
batch, so no writer is held for long."""

from __future__ import annotations

from collab.meta.purge import BATCH, Purged
from collab.meta.sql.base import SqlKind, Tx

# What may go, by table: (key columns, condition on ``?`` = now).
_DEAD = {
    "invites": ("id", "used_by IS NOT NULL OR closed_reason IS NOT NULL OR expires_at<=?"),
    "sessions": ("id", "revoked OR expires_at<=?"),
    "tickets": ("digest", "used OR expires_at<=?"),
    "cache": ("key", "expires_at<=?"),
    "audit": ("id", "at<?"),
    "revoked_room_tokens": ("room_id, jti", "expires_at<=?"),
}


class SqlPurge(SqlKind):
    async def purge(self, *, audit_before: float | None, batch: int = BATCH) -> Purged:
        now = self.clock()
        counts: dict[str, int] = {}
        for table in _DEAD:
            if table == "audit" and audit_before is None:
                counts[table] = 0
                continue
            cutoff = audit_before if table == "audit" else now
            assert cutoff is not None
            counts[table] = await self._purge_table(table, cutoff, batch)
        return Purged(**counts)

    async def _purge_table(self, table: str, cutoff: float, batch: int) -> int:
        key, condition = _DEAD[table]
        sql = (
            f"DELETE FROM {table} WHERE ({key}) IN"
            f" (SELECT {key} FROM {table} WHERE {condition} LIMIT ?)"
        )

        def _batch(db: Tx) -> int:
            return int(db.execute(sql, (cutoff, batch)).rowcount)

        total = 0
        while True:
            deleted = await self._write(_batch)
            total += deleted
            if deleted < batch:
                return total
