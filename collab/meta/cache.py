"""A small key-value cache with expiry: Authlib's state, nonce and PKCE verifier live here
between the login redirect and its callback."""

from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    async def cache_get(self, key: str) -> str | None:
        """The value, or None when missing or expired."""

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        """Set (or replace) a value for ``ttl`` seconds; expired entries are purged on the way."""

    async def cache_delete(self, key: str) -> None:
        """Delete the entry (idempotent)."""
