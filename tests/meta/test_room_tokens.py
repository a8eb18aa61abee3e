"""Revoked room tokens: kept per (room, jti), so a revocation reaches its own room only."""

from __future__ import annotations

import pytest

from collab.meta import MetaStore, RoomTokenRevocations
from tests.meta.support import T0, Clock

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
