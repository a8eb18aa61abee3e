"""The audit log: newest first, filtered by room, paged by id; detail round-trips as JSON."""

from __future__ import annotations

import pytest

from collab.meta import Audit, AuditEvent
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_audit_newest_first_with_room_filter_and_cursor(meta: Audit, clock: Clock) -> None:
    for i in range(5):
        await meta.record(
            AuditEvent(
                at=T0 + i,
                action="member.role",
                actor="u1",
                room_id="r" if i % 2 == 0 else "other",
                target=f"u{i}",
                detail={"role": "editor", "n": i, "nested": {"ok": [1, 2]}},
                ip="10.0.0.1",
            )
        )
    events = await meta.list_audit()
    assert [e.target for e in events] == ["u4", "u3", "u2", "u1", "u0"]
    ids = [e.id for e in events]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    newest = events[0]
    assert (newest.at, newest.action, newest.actor, newest.room_id, newest.ip) == (
        T0 + 4,
        "member.role",
        "u1",
        "r",
        "10.0.0.1",
    )
    assert newest.detail == {"role": "editor", "n": 4, "nested": {"ok": [1, 2]}}
    assert [e.target for e in await meta.list_audit(room_id="r")] == ["u4", "u2", "u0"]
    page1 = await meta.list_audit(limit=2)
    assert [e.target for e in page1] == ["u4", "u3"]
    page2 = await meta.list_audit(limit=2, before_id=page1[-1].id)
    assert [e.target for e in page2] == ["u2", "u1"]
    roomed = await meta.list_audit(room_id="r", limit=5, before_id=page1[-1].id)
    assert [e.target for e in roomed] == ["u2", "u0"]
    assert await meta.list_audit(limit=0) == []
    await meta.record(AuditEvent(at=T0, action="login.failure"))
    bare = (await meta.list_audit(limit=1))[0]
    assert (bare.action, bare.actor, bare.room_id, bare.detail) == ("login.failure", None, None, {})
