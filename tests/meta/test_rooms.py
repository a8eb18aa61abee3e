"""Rooms and members: created with their owner, listed per user, deleted with everything
that hangs off them."""

from __future__ import annotations

import pytest

from collab.errors import Conflict, NotFound
from collab.meta import Member, MetaStore, Role, Rooms
from tests.meta.support import T0, Clock

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
