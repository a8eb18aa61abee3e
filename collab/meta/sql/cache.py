"""The cache: expired rows are purged on every set."""

from __future__ import annotations

from collab.meta.sql.base import SqlKind, Tx, upsert


class SqlCache(SqlKind):
    async def cache_get(self, key: str) -> str | None:
        rows = await self._read(
            "SELECT value FROM cache WHERE key=? AND expires_at>?", (key, self.clock())
        )
        return str(rows[0][0]) if rows else None

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        def _set(db: Tx) -> None:
            now = self.clock()
            db.execute("DELETE FROM cache WHERE expires_at<=?", (now,))
            upsert(db, "cache", {"key": key, "value": value, "expires_at": now + ttl}, pk="key")

        await self._write(_set)

    async def cache_delete(self, key: str) -> None:
        await self._write(lambda db: db.execute("DELETE FROM cache WHERE key=?", (key,)))
