"""The purge (issue 8, item 10): used or ended invites, dead sessions and tickets, expired
cache entries and old audit rows go; everything still alive stays."""

from __future__ import annotations

import pytest

from collab.meta import AuditEvent, MetaStore, Purged, Role
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_purge_deletes_only_what_is_dead(meta: MetaStore, clock: Clock) -> None:
    await meta.create_room("r", "R", "a")
    _, used = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.redeem_invite(used, "b")
    revoked, _ = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.close_invite(revoked.id, "revoked")
    await meta.create_invite("r", Role.viewer, "a", ttl=5)  # expires
    live_invite, live_code = await meta.create_invite("r", Role.viewer, "a", ttl=600)
    await meta.create_session("a", ttl=5)  # expires
    gone, _ = await meta.create_session("a", ttl=600)
    await meta.revoke_session(gone.id)
    _, live_session = await meta.create_session("a", ttl=600)
    used_ticket = await meta.create_ticket("a", "r", None, None, ttl=600)
    assert await meta.consume_ticket(used_ticket) is not None
    await meta.create_ticket("a", "r", None, None, ttl=5)  # expires
    live_ticket = await meta.create_ticket("a", "r", None, None, ttl=600)
    await meta.cache_set("old", "v", ttl=5)
    await meta.cache_set("new", "v", ttl=600)
    for i in range(5):
        await meta.record(AuditEvent(at=T0 + i, action="a", room_id="r", target=str(i)))
    clock.advance(10)

    purged = await meta.purge(audit_before=T0 + 3, batch=2)
    assert purged == Purged(invites=3, sessions=2, tickets=2, cache=1, audit=3)
    assert purged.total == 11
    assert [i.id for i in await meta.list_invites("r")] == [live_invite.id]
    assert await meta.get_session(live_session) is not None
    assert await meta.cache_get("new") == "v"
    assert [e.target for e in await meta.list_audit()] == ["4", "3"]
    # Nothing left to purge; keeping every audit row keeps them.
    assert await meta.purge(audit_before=None) == Purged()
    assert len(await meta.list_audit()) == 2
    # What survived still works.
    assert (await meta.redeem_invite(live_code, "c")).role == Role.viewer
    assert await meta.consume_ticket(live_ticket) is not None


async def test_audit_ids_are_never_reused_after_a_purge(meta: MetaStore, clock: Clock) -> None:
    for i in range(3):
        await meta.record(AuditEvent(at=T0 + i, action="a"))
    newest = (await meta.list_audit(limit=1))[0].id
    assert newest is not None
    await meta.purge(audit_before=T0 + 10)
    await meta.record(AuditEvent(at=T0 + 20, action="b"))
    after = (await meta.list_audit(limit=1))[0].id
    assert after is not None and after > newest
