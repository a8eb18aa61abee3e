"""Rooms and members: created with their owner, listed per user, deleted with everything
that hangs off them."""

from __future__ import annotations

import functools

import pytest

from collab.errors import Conflict, LimitReached, NotFound, Quota
from collab.meta import AuditEvent, Member, MetaStore, Role, Rooms
from tests.meta.support import T0, Clock, all_at_once, owners_demote_each_other

pytestmark = pytest.mark.anyio


async def test_create_room_makes_the_owner_atomically(meta: Rooms, clock: Clock) -> None:
    room = await meta.create_room("r1", "Room one", "u1")
    assert (room.id, room.title, room.created_by, room.created_at, room.gc) == (
        "r1",
        "Room one",
        "u1",
        T0,
        True,
    )
    assert await meta.get_room("r1") == room
    assert await meta.get_member("r1", "u1") == Member("r1", "u1", Role.owner, T0)
    with pytest.raises(Conflict):
        await meta.create_room("r1", "Again", "u2")
    assert await meta.get_member("r1", "u2") is None
    assert (r := await meta.get_room("r1")) is not None and r.title == "Room one"
    assert await meta.get_room("nope") is None


async def test_every_room_id_in_pages(meta: Rooms) -> None:
    assert await meta.list_room_ids() == []
    for room_id in ("c", "a", "b", "d"):
        await meta.create_room(room_id, room_id.upper(), "u1")
    assert await meta.list_room_ids() == ["a", "b", "c", "d"]
    assert await meta.list_room_ids(limit=2) == ["a", "b"]
    assert await meta.list_room_ids(after="b", limit=2) == ["c", "d"]
    assert await meta.list_room_ids(after="d") == []
    await meta.delete_room("b")
    assert await meta.list_room_ids() == ["a", "c", "d"]


async def test_rooms_for_a_user_and_counts(meta: Rooms, clock: Clock) -> None:
    a = await meta.create_room("a", "A", "u1")
    clock.advance(1)
    b = await meta.create_room("b", "B", "u2")
    await meta.set_member("b", "u1", Role.viewer)
    assert await meta.list_rooms_for("u1") == [(a, Role.owner), (b, Role.viewer)]
    assert await meta.list_rooms_for("u3") == []
    assert await meta.count_rooms_created_by("u1") == 1
    assert await meta.count_rooms_created_by("u3") == 0
    await meta.rename_room("a", "A renamed")
    assert (r := await meta.get_room("a")) is not None and r.title == "A renamed"
    with pytest.raises(NotFound):
        await meta.rename_room("nope", "x")


async def test_set_member_upserts_and_keeps_added_at(meta: Rooms, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    clock.advance(5)
    added = await meta.set_member("r", "u2", Role.editor)
    assert added == Member("r", "u2", Role.editor, T0 + 5)
    clock.advance(5)
    lowered = await meta.set_member("r", "u2", Role.viewer)
    assert lowered == Member("r", "u2", Role.viewer, T0 + 5), "set_member may lower a role"
    assert await meta.get_member("r", "u2") == lowered
    assert [m.user_id for m in await meta.list_members("r")] == ["u1", "u2"]
    await meta.remove_member("r", "u2")
    await meta.remove_member("r", "u2")  # idempotent
    assert await meta.get_member("r", "u2") is None
    assert await meta.list_members("r") == [Member("r", "u1", Role.owner, T0)]
    with pytest.raises(NotFound):
        await meta.set_member("nope", "u2", Role.viewer)


async def test_delete_room_deletes_its_members_invites_and_tickets(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.create_room("keep", "K", "u1")
    await meta.set_member("r", "u2", Role.editor)
    _, invite_secret = await meta.create_invite("r", Role.editor, "u1", ttl=60)
    _, kept_invite = await meta.create_invite("keep", Role.viewer, "u1", ttl=60)
    ticket_secret = await meta.create_ticket("u2", "r", None, None, ttl=30)
    await meta.delete_room("r")
    assert await meta.get_room("r") is None
    assert await meta.list_members("r") == []
    assert await meta.get_member("r", "u2") is None
    with pytest.raises(NotFound):
        await meta.redeem_invite(invite_secret, "u3")
    assert await meta.consume_ticket(ticket_secret) is None
    assert [r.id for r, _ in await meta.list_rooms_for("u1")] == ["keep"]
    # A room re-created under the same id starts clean.
    await meta.create_room("r", "R2", "u9")
    assert [m.user_id for m in await meta.list_members("r")] == ["u9"]
    assert (await meta.redeem_invite(kept_invite, "u3")).role == Role.viewer
    await meta.delete_room("never-existed")  # idempotent


async def test_add_member_refuses_an_existing_member(meta: Rooms, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    assert await meta.add_member("r", "u2", Role.viewer) == Member("r", "u2", Role.viewer, T0)
    with pytest.raises(Conflict):
        await meta.add_member("r", "u1", Role.viewer)  # never lowers the owner
    assert (m := await meta.get_member("r", "u1")) is not None and m.role == Role.owner
    with pytest.raises(NotFound):
        await meta.add_member("nope", "u2", Role.viewer)


async def test_update_member_keeps_an_owner(meta: Rooms, clock: Clock) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.add_member("r", "u2", Role.editor)
    with pytest.raises(Conflict):
        await meta.update_member("r", "u1", Role.editor)
    with pytest.raises(Conflict):
        await meta.update_member("r", "u1", None)
    with pytest.raises(NotFound):
        await meta.update_member("r", "u9", Role.viewer)
    change = await meta.update_member("r", "u2", Role.owner)
    assert change.previous == Member("r", "u2", Role.editor, T0)
    assert change.current == Member("r", "u2", Role.owner, T0)
    assert (await meta.update_member("r", "u1", None)).current is None
    assert [m.user_id for m in await meta.list_members("r")] == ["u2"]
    with pytest.raises(Conflict):
        await meta.update_member("r", "u2", Role.viewer)


async def test_owners_demoting_each_other_at_once_leave_an_owner(meta: Rooms) -> None:
    """Issue 8, item 4: the check and the write are one step; of two owners demoting each
    other at the same moment, exactly one succeeds, in every one of 50 rooms."""
    outcomes = await owners_demote_each_other(meta, meta, 50)
    assert outcomes.count("ok") == 50 and outcomes.count("conflict") == 50


async def test_a_recreated_room_sees_no_older_audit_rows(meta: MetaStore, clock: Clock) -> None:
    """Item 5: the room keeps the highest audit id there was when it was created, and the
    deletion's event is recorded in the deletion's own step."""
    await meta.record(AuditEvent(at=T0, action="before", room_id="r"))
    first = await meta.create_room("r", "Secret title", "u1")
    await meta.record(AuditEvent(at=T0, action="room.create", room_id="r"))
    await meta.delete_room("r", AuditEvent(at=T0, action="room.delete", actor="u1", room_id="r"))
    assert [e.action for e in await meta.list_audit(room_id="r")] == [
        "room.delete",
        "room.create",
        "before",
    ]
    assert [e.action for e in await meta.list_audit(room_id="r", after_id=first.audit_floor)] == [
        "room.delete",
        "room.create",
    ]
    again = await meta.create_room("r", "Mine", "u2")
    assert again.audit_floor > first.audit_floor
    assert (r := await meta.get_room("r")) is not None and r.audit_floor == again.audit_floor
    assert await meta.list_audit(room_id="r", after_id=again.audit_floor) == []
    await meta.record(AuditEvent(at=T0, action="room.create", actor="u2", room_id="r"))
    mine = await meta.list_audit(room_id="r", after_id=again.audit_floor)
    assert [(e.action, e.actor) for e in mine] == [("room.create", "u2")]


async def test_existing_rooms_says_which_are_still_there_in_batches(meta: MetaStore) -> None:
    assert await meta.existing_rooms(set()) == set()
    for room_id in ("a", "b", "c"):
        await meta.create_room(room_id, room_id.upper(), "u1")
    dm, _ = await meta.open_dm("u1", "u2", "dm-a")
    await meta.delete_room("b")
    asked = {"a", "b", "c", "nope", dm.id} | {f"x{i}" for i in range(600)}  # past one batch
    assert await meta.existing_rooms(asked) == {"a", "c", dm.id}


async def test_a_create_past_max_rooms_is_refused_in_its_own_step(meta: MetaStore) -> None:
    """Counted in the insert's step: of 12 creates at once for a cap of 3, 3 get in (counted
    first, then written, all 12 did). DMs and other users' rooms do not count."""
    await meta.create_room("theirs", "theirs", "u2")
    await meta.open_dm("u1", "u3", "dm1")
    calls = [
        functools.partial(meta.create_room, f"r{i}", "r", "u1", max_rooms=3) for i in range(12)
    ]
    outcomes = await all_at_once(calls)
    assert sorted(outcomes) == ["LimitReached"] * 9 + ["ok"] * 3
    assert await meta.count_rooms_created_by("u1") == 3
    with pytest.raises(LimitReached) as refused:
        await meta.create_room("more", "more", "u1", max_rooms=3)
    assert refused.value.quota == Quota.rooms_per_user
    await meta.create_room("uncapped", "uncapped", "u1")  # no max_rooms: no cap
    assert (await meta.create_room("u2r", "u2r", "u2", max_rooms=2)).created_by == "u2"
