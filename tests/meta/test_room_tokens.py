"""Revoked room tokens: kept per (room, jti), so a revocation reaches its own room only; the
high-water mark of token lifetimes that says how long a revocation is kept."""

from __future__ import annotations

from functools import partial

import pytest

from collab.meta import MetaStore, RoomTokenRevocations
from tests.meta.support import T0, Clock, all_at_once

pytestmark = pytest.mark.anyio


async def test_a_revoked_token_id_is_revoked_in_its_room_only(
    meta: RoomTokenRevocations, clock: Clock
) -> None:
    jti = "0" * 32
    assert not await meta.room_token_revoked("r", jti)
    await meta.revoke_room_token("r", jti, "owner", T0 + 3600)
    assert await meta.room_token_revoked("r", jti)
    assert not await meta.room_token_revoked("other", jti)
    assert not await meta.room_token_revoked("r", "1" * 32)
    await meta.revoke_room_token("r", jti, "owner", T0 + 10)  # idempotent
    clock.advance(7200)
    assert await meta.room_token_revoked("r", jti)


async def test_the_purge_drops_revocations_no_token_can_outlive(
    meta: MetaStore, clock: Clock
) -> None:
    await meta.revoke_room_token("r", "a" * 32, "owner", T0 + 60)
    await meta.revoke_room_token("r", "b" * 32, "owner", T0 + 3600)
    await meta.revoke_room_token("other", "a" * 32, "owner", T0 + 3600)  # same id, its own row
    clock.advance(60)
    assert (await meta.purge(audit_before=None)).revoked_room_tokens == 1
    assert not await meta.room_token_revoked("r", "a" * 32)
    assert await meta.room_token_revoked("r", "b" * 32)
    assert await meta.room_token_revoked("other", "a" * 32)


async def test_the_token_ttl_mark_only_rises(meta: RoomTokenRevocations) -> None:
    """The longest token lifetime ever in force: a server started with 3600 s, then 600 s
    (a restart with a lower setting), then 3600 s again keeps 3600 throughout."""
    assert await meta.token_ttl_mark() == 0
    assert await meta.raise_token_ttl_mark(3600) == 3600
    assert await meta.raise_token_ttl_mark(600) == 3600
    assert await meta.token_ttl_mark() == 3600
    assert await meta.raise_token_ttl_mark(7200.5) == 7200.5
    assert await meta.token_ttl_mark() == 7200.5


async def test_nodes_with_different_settings_keep_the_highest_mark(meta: MetaStore) -> None:
    """Nodes starting at once, each with its own token_max_ttl, on one store: the mark is the
    highest of them, whichever order the raises land in."""
    ttls = [600.0, 86_400.0, 3600.0, 1.0] * 4
    marks = await all_at_once([partial(meta.raise_token_ttl_mark, ttl) for ttl in ttls])
    assert marks == ["ok"] * len(ttls)
    assert await meta.token_ttl_mark() == 86_400
