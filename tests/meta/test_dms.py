"""Direct messages: one room per unordered pair, opened idempotently and race-free, two
editors and no owner, never a third member; listed apart from rooms. Every store."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import anyio
import psycopg
import pytest

from collab.errors import Conflict, NotFound
from collab.meta import DM_MEMBERS, Member, MetaStore, Role, RoomRecord
from collab.meta.memory import MemoryMetaStore
from collab.meta.postgres import PostgresMetaStore
from collab.meta.rooms import dm_key
from collab.meta.sqlite import SQLiteMetaStore
from tests.meta.support import T0, Clock

pytestmark = pytest.mark.anyio


async def test_open_is_idempotent_per_unordered_pair(meta: MetaStore, clock: Clock) -> None:
    room, created = await meta.open_dm("u1", "u2", "dm-a")
    assert created
    assert room == RoomRecord("dm-a", "", "u1", T0, kind="dm", dm_key="u1 u2", audit_floor=0)
    assert room.is_dm and room.dm_peer("u1") == "u2" and room.dm_peer("u2") == "u1"
    assert room.dm_peer("u3") is None
    clock.advance(1)
    assert await meta.open_dm("u1", "u2", "dm-b") == (room, False)
    assert await meta.open_dm("u2", "u1", "dm-c") == (room, False)
    assert await meta.get_room("dm-b") is None and await meta.get_room("dm-c") is None
    assert await meta.get_room("dm-a") == room
    assert await meta.find_dm("u2", "u1") == room
    assert await meta.find_dm("u1", "u3") is None
    assert await meta.list_members("dm-a") == [
        Member("dm-a", "u1", Role.editor, T0),
        Member("dm-a", "u2", Role.editor, T0),
    ]
    other, created = await meta.open_dm("u1", "u3", "dm-d")
    assert created and other.dm_key == dm_key("u3", "u1") == "u1 u3"
    with pytest.raises(ValueError):
        await meta.open_dm("u1", "u1", "dm-e")
    await meta.create_room("taken", "T", "u1")
    with pytest.raises(Conflict):
        await meta.open_dm("u4", "u5", "taken")
    assert await meta.find_dm("u4", "u5") is None


async def test_concurrent_opens_of_one_pair_make_one_room(meta: MetaStore) -> None:
    answers: list[tuple[RoomRecord, bool]] = []

    async def open_one(i: int) -> None:
        pair = ("a", "b") if i % 2 else ("b", "a")
        answers.append(await meta.open_dm(*pair, f"dm-{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(open_one, i)
    assert len({room for room, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert len(await meta.list_dms_for("a")) == 1 == len(await meta.list_dms_for("b"))


async def test_listed_apart_from_rooms_and_not_counted(meta: MetaStore, clock: Clock) -> None:
    plain = await meta.create_room("r", "R", "u1")
    clock.advance(1)
    first, _ = await meta.open_dm("u1", "u2", "dm-1")
    clock.advance(1)
    second, _ = await meta.open_dm("u3", "u1", "dm-2")
    assert await meta.list_rooms_for("u1") == [(plain, Role.owner)]
    assert await meta.list_rooms_for("u2") == []
    assert await meta.list_dms_for("u1") == [first, second]
    assert await meta.list_dms_for("u2") == [first]
    assert await meta.list_dms_for("u4") == []
    assert await meta.count_rooms_created_by("u1") == 1
    assert await meta.count_rooms_created_by("u3") == 0


async def test_nobody_joins_leaves_or_changes_role(meta: MetaStore) -> None:
    await meta.open_dm("u1", "u2", "dm")
    with pytest.raises(Conflict, match=DM_MEMBERS):
        await meta.add_member("dm", "u3", Role.viewer)
    with pytest.raises(Conflict, match=DM_MEMBERS):
        await meta.set_member("dm", "u3", Role.editor)
    for role in (Role.owner, Role.viewer, None):
        with pytest.raises(Conflict, match=DM_MEMBERS):
            await meta.update_member("dm", "u1", role)
    with pytest.raises(NotFound):
        await meta.update_member("dm", "u3", Role.viewer)
    with pytest.raises(Conflict, match=DM_MEMBERS):
        await meta.create_invite("dm", Role.viewer, "u1", ttl=60)
    assert [m.user_id for m in await meta.list_members("dm")] == ["u1", "u2"]
    assert {m.role for m in await meta.list_members("dm")} == {Role.editor}


def _move_invite(meta: MetaStore, invite_id: str, room_id: str) -> None:
    """Point an invite at another room, under the store (no API makes one for a DM)."""
    if isinstance(meta, MemoryMetaStore):
        invites = meta.tables.invites
        key = next(k for k, i in invites.items() if i.id == invite_id)
        invites[key] = replace(invites[key], room_id=room_id)
        return
    if isinstance(meta, PostgresMetaStore):
        with psycopg.connect(meta.url) as pg:
            pg.execute("UPDATE invites SET room_id=%s WHERE id=%s", (room_id, invite_id))
        return
    assert isinstance(meta, SQLiteMetaStore)
    with sqlite3.connect(meta.path) as conn:
        conn.execute("UPDATE invites SET room_id=? WHERE id=?", (room_id, invite_id))


async def test_an_invite_into_a_dm_is_never_redeemed(meta: MetaStore) -> None:
    """Whatever got an invite there, redeeming it (by code or by id) adds nobody."""
    await meta.open_dm("u1", "u2", "dm")
    await meta.create_room("x", "X", "u1")
    invite, code = await meta.create_invite("x", Role.owner, "u1", ttl=60, email="c@x.org")
    _move_invite(meta, invite.id, "dm")
    with pytest.raises(Conflict, match=DM_MEMBERS):
        await meta.redeem_invite(code, "u3")
    with pytest.raises(Conflict, match=DM_MEMBERS):
        await meta.redeem_invite_by_id(invite.id, "u3")
    assert await meta.get_member("dm", "u3") is None
    found = await meta.get_invite(invite.id)
    assert found is not None and found.status(T0) == "pending"
