"""The cache: values expire; set replaces, delete is idempotent."""

from __future__ import annotations

import pytest

from collab.meta import Cache
from tests.meta.support import Clock

pytestmark = pytest.mark.anyio


async def test_cache_with_expiry(meta: Cache, clock: Clock) -> None:
    assert await meta.cache_get("k") is None
    await meta.cache_set("k", "v1", ttl=10)
    assert await meta.cache_get("k") == "v1"
    await meta.cache_set("k", "v2", ttl=20)
    assert await meta.cache_get("k") == "v2"
    clock.advance(20)
    assert await meta.cache_get("k") is None
    await meta.cache_set("k", "v3", ttl=5)
    assert await meta.cache_get("k") == "v3"
    await meta.cache_delete("k")
    await meta.cache_delete("k")  # idempotent
    assert await meta.cache_get("k") is None
