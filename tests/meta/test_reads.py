"""Read markers, unread counts and the mention inbox, against every backend."""

from __future__ import annotations

import pytest

from collab.meta import MAX_UNREAD, Message, MetaStore, NewMessage, Role, Unread
from tests.meta.support import Clock

pytestmark = pytest.mark.anyio


async def say(meta: MetaStore, room: str, author: str, n: int) -> Message:
    message, _ = await meta.post_message(
        NewMessage(room, f"{room}-m{n}", author, author, None, f"c{n}", f"text {n}", 100.0 + n)
    )
    return message


async def room_of(meta: MetaStore, room: str, *members: str) -> None:
    await meta.create_room(room, room, "owner")
    for user in members:
        await meta.add_member(room, user, Role.viewer)


async def test_a_marker_moves_forward_only_and_is_clamped(meta: MetaStore, clock: Clock) -> None:
    await room_of(meta, "r", "u1")
    for n in range(1, 6):
        await say(meta, "r", "owner", n)
    assert await meta.get_read_marker("r", "u1") == 0
    assert await meta.set_read_markers("r", {"u1": 3}) == {"u1": 3}
    assert await meta.set_read_markers("r", {"u1": 2}) == {"u1": 3}
    assert await meta.set_read_markers("r", {"u1": 99, "owner": -4}) == {"u1": 5, "owner": 0}
    assert await meta.get_read_marker("r", "u1") == 5
    assert await meta.set_read_markers("empty", {"u1": 7}) == {"u1": 0}
    markers = await meta.list_read_markers("r")
    assert [(m.user_id, m.up_to, m.updated_at) for m in markers] == [("u1", 5, clock.now)]


async def test_markers_are_listed_for_current_members_only(meta: MetaStore) -> None:
    await room_of(meta, "r", "u1", "u2")
    await say(meta, "r", "owner", 1)
    await meta.set_read_markers("r", {"u1": 1, "u2": 1, "owner": 1})
    await meta.remove_member("r", "u2")
    assert [m.user_id for m in await meta.list_read_markers("r")] == ["owner", "u1"]


async def test_markers_of_many_rooms_are_each_rooms_list(meta: MetaStore) -> None:
    """``list_read_markers_of``: what ``list_read_markers`` says of each room, every room asked
    a key (none for a room without markers or not there), past one query's 500 rooms."""
    await room_of(meta, "a", "u1", "u2")
    await room_of(meta, "b", "u1")
    await room_of(meta, "quiet", "u1")
    for room in ("a", "b"):
        await say(meta, room, "owner", 1)
        await meta.set_read_markers(room, {"u1": 1, "u2": 1, "owner": 1})
    await meta.remove_member("a", "u2")
    asked = ["b", "quiet", "a", "gone", *(f"none{n}" for n in range(600))]
    found = await meta.list_read_markers_of(asked)
    assert set(found) == set(asked)
    for room in ("a", "b", "quiet"):
        assert found[room] == await meta.list_read_markers(room), room
    assert [m.user_id for m in found["a"]] == ["owner", "u1"] and found["quiet"] == []
    assert not any(found[room] for room in asked[3:])


async def test_unread_counts_others_messages_after_the_marker(meta: MetaStore) -> None:
    await room_of(meta, "a", "me")
    await room_of(meta, "b", "me")
    for n in range(1, 5):
        await say(meta, "a", "owner", n)
    mine = await say(meta, "a", "me", 5)
    gone = await say(meta, "a", "owner", 6)
    await meta.delete_message("a", gone.id, 200.0)
    assert mine.seq == 5
    counts = await meta.unread_counts("me", ["a", "b", "nothing"])
    assert counts == {"a": Unread(4, 0), "b": Unread(0, 0), "nothing": Unread(0, 0)}
    await meta.set_read_markers("a", {"me": 3})
    assert (await meta.unread_counts("me", ["a"]))["a"] == Unread(1, 0)
    assert (await meta.unread_counts("owner", ["a"]))["a"] == Unread(1, 0)


async def test_unread_counts_stop_at_the_cap(meta: MetaStore) -> None:
    await room_of(meta, "r", "me")
    for n in range(1, MAX_UNREAD + 3):
        await say(meta, "r", "owner", n)
    assert (await meta.unread_counts("me", ["r"]))["r"].unread == MAX_UNREAD


async def test_inbox_entries_once_per_user_per_message(meta: MetaStore, clock: Clock) -> None:
    await room_of(meta, "r", "u1", "u2")
    first, second = await say(meta, "r", "owner", 1), await say(meta, "r", "owner", 2)
    assert await meta.add_inbox_entries(first, ["u1", "u2", "u1"], 10.0) == ["u1", "u2"]
    assert await meta.add_inbox_entries(first, ["u1"], 11.0) == []
    assert await meta.add_inbox_entries(second, ["u1"], 12.0) == ["u1"]
    listed = await meta.list_inbox("u1")
    assert [(e.message_id, e.seq, e.created_at, e.read) for e, _ in listed] == [
        (second.id, 2, 12.0, False),
        (first.id, 1, 10.0, False),
    ]
    assert [m for _, m in listed] == [second, first]
    assert listed[0][0].id > listed[1][0].id and listed[0][0].room_id == "r"
    older = await meta.list_inbox("u1", before_id=listed[0][0].id)
    assert [e.message_id for e, _ in older] == [first.id]
    assert [e.message_id for e, _ in await meta.list_inbox("u1", limit=1)] == [second.id]
    assert (await meta.unread_counts("u1", ["r"]))["r"] == Unread(2, 2)


async def test_inbox_read_by_id_by_all_and_by_the_room_marker(meta: MetaStore) -> None:
    await room_of(meta, "r", "u1", "u2")
    messages = [await say(meta, "r", "owner", n) for n in range(1, 4)]
    for message in messages:
        await meta.add_inbox_entries(message, ["u1", "u2"], message.created_at)
    ids = {m.id: e.id for e, m in await meta.list_inbox("u1")}
    others = [e.id for e, _ in await meta.list_inbox("u2")]
    assert await meta.mark_inbox_read("u1", [ids[messages[2].id], *others, 10**9]) == 1
    assert await meta.mark_inbox_read("u1", [ids[messages[2].id]]) == 0
    unread = [m.id for _, m in await meta.list_inbox("u1", unread_only=True)]
    assert unread == [messages[1].id, messages[0].id]
    await meta.set_read_markers("r", {"u1": 1})
    assert [m.id for _, m in await meta.list_inbox("u1", unread_only=True)] == [messages[1].id]
    assert (await meta.unread_counts("u1", ["r"]))["r"] == Unread(2, 1)
    assert await meta.mark_inbox_read("u1", None) == 1
    assert await meta.list_inbox("u1", unread_only=True) == []
    assert len(await meta.list_inbox("u2", unread_only=True)) == 3


async def test_inbox_hides_rooms_left_and_drops_deleted_messages(meta: MetaStore) -> None:
    await room_of(meta, "r", "u1")
    await room_of(meta, "s", "u1")
    kept, gone, there = (
        await say(meta, "r", "owner", 1),
        await say(meta, "r", "owner", 2),
        await say(meta, "s", "owner", 1),
    )
    for message in (kept, gone, there):
        await meta.add_inbox_entries(message, ["u1"], message.created_at)
    await meta.delete_message("r", gone.id, 300.0)
    assert [m.id for _, m in await meta.list_inbox("u1")] == [there.id, kept.id]
    assert (await meta.unread_counts("u1", ["r"]))["r"].mentions == 1
    deleted = await meta.get_message("r", gone.id)
    assert deleted is not None  # a late entry for it (a race with the deletion) shows nowhere
    await meta.add_inbox_entries(deleted, ["u1"], 301.0)
    assert [m.id for _, m in await meta.list_inbox("u1")] == [there.id, kept.id]
    assert (await meta.unread_counts("u1", ["r"]))["r"].mentions == 1
    await meta.remove_member("s", "u1")
    assert [m.id for _, m in await meta.list_inbox("u1")] == [kept.id]
    await meta.add_member("s", "u1", Role.viewer)  # back: its entries show again
    assert len(await meta.list_inbox("u1")) == 2


async def test_deleting_a_room_deletes_its_markers_and_entries(meta: MetaStore) -> None:
    await room_of(meta, "r", "u1")
    message = await say(meta, "r", "owner", 1)
    await meta.add_inbox_entries(message, ["u1"], 1.0)
    await meta.set_read_markers("r", {"owner": 1})
    await meta.delete_room("r")
    await room_of(meta, "r", "u1")
    again = await say(meta, "r", "owner", 1)
    assert again.id == message.id  # the same id again: nothing of the old room may show
    assert await meta.get_read_marker("r", "owner") == 0
    assert await meta.list_inbox("u1") == []
    assert await meta.add_inbox_entries(again, ["u1"], 2.0) == ["u1"]


async def test_an_edit_sets_mentions_when_given(meta: MetaStore) -> None:
    message = await say(meta, "r", "owner", 1)
    edited = await meta.edit_message("r", message.id, "hi @u1", 5.0, ["u1"])
    assert edited.mentions == ("u1",) and edited.text == "hi @u1"
    kept = await meta.edit_message("r", message.id, "hi again @u1", 6.0)
    assert kept.mentions == ("u1",)
    assert (await meta.edit_message("r", message.id, "hi", 7.0, [])).mentions == ()


async def test_a_post_entry_is_read_when_the_marker_reached_it_first(meta: MetaStore) -> None:
    """A post's entries are made after readers were sent it: a marker that already reaches the
    message makes its entry read (``read_if_marked``); an edit's new mention stays unread."""
    await room_of(meta, "r", "u1", "u2")
    first, second = await say(meta, "r", "owner", 1), await say(meta, "r", "owner", 2)
    await meta.set_read_markers("r", {"u1": 1})
    assert await meta.add_inbox_entries(first, ["u1", "u2"], 10.0, read_if_marked=True) == [
        "u1",
        "u2",
    ]
    assert await meta.add_inbox_entries(second, ["u1"], 11.0, read_if_marked=True) == ["u1"]
    listed = [(m.id, e.user_id, e.read) for e, m in await meta.list_inbox("u1")]
    assert listed == [(second.id, "u1", False), (first.id, "u1", True)]
    assert [e.read for e, _ in await meta.list_inbox("u2")] == [False]
    assert (await meta.unread_counts("u1", ["r"]))["r"] == Unread(1, 1)
    third = await say(meta, "r", "owner", 3)
    await meta.set_read_markers("r", {"u2": 3})
    assert await meta.add_inbox_entries(third, ["u2"], 12.0) == ["u2"]  # an edit's
    assert [e.read for e, _ in await meta.list_inbox("u2", unread_only=True)] == [False]
