"""The cache in memory: (value, expires_at) by key; expired entries are purged on every set."""

from __future__ import annotations

from collab.meta.memory.base import MemoryKind


class MemoryCache(MemoryKind):
    async def cache_get(self, key: str) -> str | None:
        entry = self.tables.cache.get(key)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        now = self.clock()
        cache = self.tables.cache
        for stale in [k for k, (_, expires_at) in cache.items() if expires_at <= now]:
            del cache[stale]
        cache[key] = (value, now + ttl)

    async def cache_delete(self, key: str) -> None:
        self.tables.cache.pop(key, None)
