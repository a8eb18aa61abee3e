"""Revoked room tokens: kept per (room, jti), so a revocation reaches its own room only."""

from __future__ import annotations

import pytest

from collab.meta import RoomTokenRevocations
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
