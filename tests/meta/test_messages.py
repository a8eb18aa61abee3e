"""Chat messages: gapless seqs, idempotent posts, threads, edits, tombstones, reactions,
paging both ways and archiving, against every backend."""

from __future__ import annotations

import anyio
import pytest

from collab.errors import Conflict, NotFound
from collab.meta import Message, MetaStore, NewMessage, ThreadProblem

pytestmark = pytest.mark.anyio


def new(n: int, *, author: str = "u1", client: str | None = None, **kw: object) -> NewMessage:
    return NewMessage(
        room_id=str(kw.pop("room", "r")),
        id=f"m{n}",
        author=author,
        author_name=author.upper(),
        author_handle=author,
        client_id=client or f"c{n}",
        text=f"text {n}",
        created_at=100.0 + n,
        **kw,  # type: ignore[arg-type]
    )


async def test_posts_get_gapless_seqs_per_room(meta: MetaStore) -> None:
    first, created = await meta.post_message(new(1))
    assert created and first.seq == 1 and first.text == "text 1" and first.author_name == "U1"
    assert (await meta.post_message(new(2)))[0].seq == 2
    assert (await meta.post_message(new(3, room="other")))[0].seq == 1
    assert await meta.last_seq("r") == 2 and await meta.last_seq("none") == 0
    assert await meta.get_message("r", "m1") == first
    assert await meta.get_message("other", "m1") is None


async def test_a_client_id_is_one_message_per_author(meta: MetaStore) -> None:
    one, created = await meta.post_message(new(1, client="same"))
    again, created_again = await meta.post_message(new(2, client="same"))
    assert created and not created_again and again == one
    other, created_other = await meta.post_message(new(3, author="u2", client="same"))
    assert created_other and other.id == "m3" and other.seq == 2


async def test_concurrent_posts_of_one_client_id_store_one_row(meta: MetaStore) -> None:
    results: list[tuple[Message, bool]] = []

    async def post(n: int) -> None:
        results.append(await meta.post_message(new(n, client="dup")))

    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(post, n)
    assert sum(created for _, created in results) == 1
    assert len({m.id for m, _ in results}) == 1
    assert await meta.last_seq("r") == 1


class Told:
    """A ``Written``: what each write told, as (id, seq, reply_count, text)."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, int, int, str]]] = []
        self.rolled_back_calls = 0

    def rows(self, rows: list[Message]) -> None:
        self.calls.append([(m.id, m.seq, m.reply_count, m.text) for m in rows])

    def rolled_back(self) -> None:
        self.rolled_back_calls += 1


async def test_each_write_tells_the_rows_it_changed_and_a_refused_one_nothing(
    meta: MetaStore,
) -> None:
    told = Told()
    await meta.post_message(new(1), told)
    await meta.post_message(new(2, thread="m1"), told)  # a reply: its parent first
    await meta.post_message(new(3, client="c1"), told)  # a retry of m1: m1 as it is
    with pytest.raises(ThreadProblem):
        await meta.post_message(new(4, thread="nope"), told)
    await meta.edit_message("r", "m1", "edited", 200.0, None, told)
    await meta.react("r", "m1", "👍", "u2", True, told)
    await meta.delete_message("r", "m2", 300.0, told)
    with pytest.raises(Conflict):
        await meta.edit_message("r", "m2", "too late", 301.0, None, told)
    assert told.calls == [
        [("m1", 1, 0, "text 1")],
        [("m1", 1, 1, "text 1"), ("m2", 2, 0, "text 2")],
        [("m1", 1, 1, "text 1")],
        [("m1", 1, 1, "edited")],
        [("m1", 1, 1, "edited")],
        [("m2", 2, 0, "")],
    ]
    assert told.rolled_back_calls == 0


async def test_concurrent_writes_of_one_room_tell_their_rows_in_seq_order(
    meta: MetaStore,
) -> None:
    """The chat doc shows rows in the order it is told them: a room's concurrent posts must be
    told in the order of their seqs (on PostgreSQL, where ``rows`` follows the commit too)."""
    told = Told()

    async def post(n: int) -> None:
        with anyio.fail_after(30):
            await meta.post_message(new(n), told)

    async with anyio.create_task_group() as tg:
        for n in range(1, 21):
            tg.start_soon(post, n)
    seqs = [call[-1][1] for call in told.calls]
    assert seqs == list(range(1, 21))


async def test_replies_count_on_their_parent_one_level_deep(meta: MetaStore) -> None:
    await meta.post_message(new(1))
    reply, _ = await meta.post_message(new(2, thread="m1"))
    assert reply.thread == "m1"
    parent = await meta.get_message("r", "m1")
    assert parent is not None and parent.reply_count == 1 and parent.last_reply_at == 102.0
    with pytest.raises(ThreadProblem) as deep:
        await meta.post_message(new(3, thread="m2"))
    assert not deep.value.missing
    with pytest.raises(ThreadProblem) as missing:
        await meta.post_message(new(4, thread="nope"))
    assert missing.value.missing
    assert await meta.last_seq("r") == 2  # refused posts take no seq
    assert [m.id for m in await meta.list_messages("r", thread="m1")] == ["m2"]


async def test_edit_delete_and_react(meta: MetaStore) -> None:
    await meta.post_message(new(1, mentions=("u2",)))
    edited = await meta.edit_message("r", "m1", "new text", 200.0)
    assert (edited.text, edited.edited_at) == ("new text", 200.0)
    liked = await meta.react("r", "m1", "👍", "u2", True)
    liked = await meta.react("r", "m1", "👍", "u3", True)
    liked = await meta.react("r", "m1", "👍", "u3", True)  # idempotent
    assert liked.reactions == {"👍": ("u2", "u3")}
    unliked = await meta.react("r", "m1", "👍", "u2", False)
    assert unliked.reactions == {"👍": ("u3",)}
    gone = await meta.react("r", "m1", "👍", "u3", False)
    assert gone.reactions == {}
    await meta.react("r", "m1", "🎉", "u2", True)
    tomb = await meta.delete_message("r", "m1", 300.0)
    assert tomb.deleted and tomb.text == "" and tomb.reactions == {} and tomb.mentions == ()
    assert await meta.delete_message("r", "m1", 400.0) == tomb  # idempotent
    with pytest.raises(Conflict):
        await meta.edit_message("r", "m1", "back", 500.0)
    with pytest.raises(Conflict):
        await meta.react("r", "m1", "👍", "u2", True)
    assert (await meta.react("r", "m1", "👍", "u2", False)) == tomb
    for call in (
        meta.edit_message("r", "nope", "x", 1.0),
        meta.delete_message("r", "nope", 1.0),
        meta.react("r", "nope", "👍", "u1", True),
    ):
        with pytest.raises(NotFound):
            await call


def seqs(found: list[Message]) -> list[int]:
    return [m.seq for m in found]


async def test_paging_backwards_and_forwards_and_archiving(meta: MetaStore) -> None:
    for n in range(1, 11):
        await meta.post_message(new(n))
    assert seqs(await meta.list_messages("r", limit=3)) == [8, 9, 10]
    assert seqs(await meta.list_messages("r", before_seq=8, limit=3)) == [5, 6, 7]
    assert seqs(await meta.list_messages("r", before_seq=3, limit=3)) == [1, 2]
    assert seqs(await meta.list_messages("r", after_seq=2, limit=3)) == [3, 4, 5]
    assert seqs(await meta.list_messages("r", after_seq=9, limit=3)) == [10]
    await meta.archive_messages("r", 4)
    archived = [m.archived for m in await meta.list_messages("r", limit=10)]
    assert archived == [True] * 4 + [False] * 6
    await meta.archive_messages("r", 6, since_seq=4)
    archived = [m.archived for m in await meta.list_messages("r", limit=10)]
    assert archived == [True] * 6 + [False] * 4
    await meta.archive_messages("r", 2, keep=8)  # a load with a larger window: 3.. are live again
    archived = [m.archived for m in await meta.list_messages("r", limit=10)]
    assert archived == [True] * 2 + [False] * 8
    # A load that read the table before another node's window moved on (to 10 - 3) keeps
    # that node's line: nothing below it comes back.
    await meta.archive_messages("r", 2, keep=3)
    archived = [m.archived for m in await meta.list_messages("r", limit=10)]
    assert archived == [True] * 7 + [False] * 3


async def test_deleting_the_room_deletes_its_messages(meta: MetaStore) -> None:
    await meta.create_room("r", "R", "u1")
    await meta.post_message(new(1, client="k"))
    await meta.delete_room("r")
    await meta.create_room("r", "R", "u1")
    assert await meta.last_seq("r") == 0
    again, created = await meta.post_message(new(2, client="k"))
    assert created and again.seq == 1
