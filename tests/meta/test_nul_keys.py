"""A key with a NUL character in it (a request's path or query parameter: ``/messages/a%00b``,
``?thread=%00``) names nothing stored: every backend answers "not found", as for any other
unknown key. PostgreSQL's ``text`` cannot hold NUL, so no row there can match it; its driver
refuses to send such a string at all, which must not surface as a store failure (a 500 and a
logged server bug) where SQLite and the memory twin say "no such thing"."""

from __future__ import annotations

import pytest

from collab.meta import MetaStore, NewMessage, Role, ThreadProblem

pytestmark = pytest.mark.anyio

NUL = "a\x00b"


def post(n: int, *, thread: str | None = None) -> NewMessage:
    return NewMessage(
        room_id="r",
        id=f"m{n}",
        author="u1",
        author_name="U1",
        author_handle="u1",
        client_id=f"c{n}",
        text=f"text {n}",
        created_at=100.0 + n,
        thread=thread,
    )


async def test_lookups_by_a_key_with_nul_find_nothing(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.post_message(post(1))
    assert await meta.get_message("r", NUL) is None
    assert await meta.posted_message("r", "u1", NUL) is None
    assert await meta.get_room(NUL) is None
    assert await meta.get_user(NUL) is None
    assert await meta.get_member("r", NUL) is None
    assert await meta.get_file("r", NUL) is None
    assert await meta.get_doc_meta("r", NUL) is None
    assert await meta.get_invite(NUL) is None


async def test_reads_filtered_by_a_key_with_nul_list_nothing(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.post_message(post(1))
    assert await meta.list_messages("r", thread=NUL) == []
    assert await meta.list_messages(NUL) == []
    assert await meta.list_members(NUL) == []
    assert [m.user_id for m in await meta.list_members("r")] == ["u1"]
    assert (await meta.get_member("r", "u1")) is not None
    assert (await meta.get_member("r", "u1")).role == Role.owner  # type: ignore[union-attr]


async def test_a_reply_to_a_parent_id_with_nul_is_a_missing_parent(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.post_message(post(1))
    with pytest.raises(ThreadProblem) as caught:
        await meta.post_message(post(2, thread=NUL))
    assert caught.value.missing
    assert [m.seq for m in await meta.list_messages("r")] == [1]
