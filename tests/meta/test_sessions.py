"""Sessions: live until expired or revoked; the stored id is a digest, not a credential."""

from __future__ import annotations

import pytest

from collab.meta import Sessions, digest
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_session_lifecycle_and_expiry(meta: Sessions, clock: Clock) -> None:
    session, secret = await meta.create_session("u1", ttl=3600)
    assert session.id == digest(secret) != secret
    assert (session.user_id, session.created_at, session.expires_at) == ("u1", T0, T0 + 3600)
    assert await meta.get_session(secret) == session
    assert await meta.get_session(session.id) is None, "the stored digest is not a credential"
    assert await meta.get_session("nope") is None
    clock.advance(3599)
    assert await meta.get_session(secret) == session
    clock.advance(1)
    assert await meta.get_session(secret) is None


async def test_revoke_sessions(meta: Sessions, clock: Clock) -> None:
    one, one_secret = await meta.create_session("u1", ttl=100)
    two, two_secret = await meta.create_session("u1", ttl=1000)
    await meta.create_session("u1", ttl=10)
    other, other_secret = await meta.create_session("u2", ttl=100)
    await meta.revoke_session(one.id)
    assert await meta.get_session(one_secret) is None
    await meta.revoke_session("unknown")  # idempotent
    clock.advance(20)  # the ttl=10 one has expired: not live, so not reported
    assert await meta.revoke_user_sessions("u1") == [two.id]
    assert await meta.get_session(two_secret) is None
    assert await meta.get_session(other_secret) == other
    assert await meta.revoke_user_sessions("u1") == []


async def test_live_sessions_names_the_ids_neither_revoked_nor_expired(
    meta: Sessions, clock: Clock
) -> None:
    live, _ = await meta.create_session("u1", ttl=100)
    revoked, _ = await meta.create_session("u1", ttl=100)
    expiring, _ = await meta.create_session("u2", ttl=10)
    await meta.revoke_session(revoked.id)
    ids = [live.id, revoked.id, expiring.id, "unknown"]
    assert await meta.live_sessions(ids) == {live.id, expiring.id}
    clock.advance(10)
    assert await meta.live_sessions(ids) == {live.id}
    assert await meta.live_sessions([]) == set()
