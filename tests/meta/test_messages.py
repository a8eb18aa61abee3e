"""Chat messages: gapless seqs, idempotent posts, threads, edits, tombstones, reactions,
paging both ways and archiving, and the webhook deliveries a post, an edit or a deletion
enqueues in its own transaction (none on a retry, none left by a write that failed), against
every backend."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from collab.errors import Conflict, LimitReached, NotFound, Quota
from collab.meta import (
    MAX_REACTIONS,
    Delivery,
    Endpoint,
    Health,
    Message,
    MetaStore,
    NewMessage,
    ThreadProblem,
    WebhookOutbox,
)
from tests.meta.support import T0

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
    assert await meta.posted_message("r", "u1", "same") == one
    assert await meta.posted_message("r", "u2", "same") == other
    assert await meta.posted_message("r", "u3", "same") is None
    assert await meta.posted_message("other", "u1", "same") is None


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


async def test_a_deleted_parent_keeps_its_replies_and_takes_no_new_one(meta: MetaStore) -> None:
    await meta.post_message(new(1))
    reply, _ = await meta.post_message(new(2, thread="m1"))
    tomb = await meta.delete_message("r", "m1", 300.0)
    assert tomb.deleted and tomb.reply_count == 1  # the thread stays, with its replies
    with pytest.raises(Conflict):
        await meta.post_message(new(3, thread="m1"))
    assert await meta.last_seq("r") == 2 and await meta.get_message("r", "m1") == tomb
    # A retry of the reply posted before the deletion still answers that reply.
    assert await meta.post_message(new(4, thread="m1", client="c2")) == (reply, False)
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


async def test_a_message_holds_at_most_max_reactions_distinct_emoji(meta: MetaStore) -> None:
    await meta.post_message(new(1))
    emoji = [chr(0x1F600 + n) for n in range(MAX_REACTIONS + 1)]
    for n, one in enumerate(emoji[:MAX_REACTIONS]):
        full = await meta.react("r", "m1", one, f"u{n}", True)
    with pytest.raises(LimitReached) as refused:
        await meta.react("r", "m1", emoji[-1], "u1", True)
    assert refused.value.quota is Quota.reactions_per_message
    assert await meta.get_message("r", "m1") == full and len(full.reactions) == MAX_REACTIONS
    joined = await meta.react("r", "m1", emoji[0], "u9", True)  # one already there: fine
    assert joined.reactions[emoji[0]] == ("u0", "u9")
    await meta.react("r", "m1", emoji[1], "u1", False)  # one emptied makes room for another
    assert emoji[-1] in (await meta.react("r", "m1", emoji[-1], "u1", True)).reactions


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


# -- the outgoing webhooks' outbox, in the message's own transaction ---------------------


class Enqueued:
    """A ``WebhookOutbox`` factory that records what each write told it it enqueued; each
    payload names its event, the message as the transaction held it and the time."""

    def __init__(self) -> None:
        self.told: list[list[Delivery]] = []
        self.ids = itertools.count()

    def outbox(self, event: str, *, fail: bool = False) -> WebhookOutbox:
        def events(message: Message, now: float) -> list[tuple[str, str]]:
            if fail:
                raise RuntimeError("the outbox failed after the row was written")
            made = [(event, f"{event} {message.id} {message.seq} {message.text!r} {now}")]
            if message.mentions:
                made.append(("mention", f"mention {message.id} {list(message.mentions)}"))
            return made

        return WebhookOutbox(events, lambda: T0, self.new_id, self.told.append)

    def new_id(self) -> str:
        return f"msg_{next(self.ids):06d}"


def hook(name: str, events: tuple[str, ...] = ("*",), room: str = "r", **kw: Any) -> Endpoint:
    created = T0 + len(name) / 1000  # distinct, whatever the order
    url = f"https://{name}.example/hook"
    return Endpoint(name, room, url, events, "whsec_x", "o", created, **kw)


async def payloads(meta: MetaStore, endpoint_id: str) -> list[str]:
    """The endpoint's deliveries' payloads, oldest first."""
    found = await meta.list_webhook_deliveries(endpoint_id, 100)
    assert all(d.state == "pending" and d.due == T0 for d in found)
    return [d.payload for d in sorted(found, key=lambda d: d.id)]


async def test_a_message_write_enqueues_its_webhook_deliveries_in_its_own_step(
    meta: MetaStore,
) -> None:
    await meta.create_webhook(hook("all"))
    await meta.create_webhook(hook("posts", ("message.posted",)))
    await meta.create_webhook(hook("mentions", ("mention",)))
    await meta.create_webhook(hook("elsewhere", room="other"))
    await meta.create_webhook(hook("off", health=Health(disabled_at=T0, disabled_reason="x")))
    enqueued = Enqueued()
    told = Told()
    await meta.post_message(new(1, mentions=("u2",)), told, enqueued.outbox("message.posted"))
    # There when the post returns: nothing else has to happen after it.
    posted = f"message.posted m1 1 'text 1' {T0}"
    assert await payloads(meta, "all") == [posted, "mention m1 ['u2']"]
    assert await payloads(meta, "posts") == [posted]
    assert await payloads(meta, "mentions") == ["mention m1 ['u2']"]
    assert await payloads(meta, "elsewhere") == [] and await payloads(meta, "off") == []
    assert [sorted(d.endpoint_id for d in made) for made in enqueued.told] == [
        ["all", "all", "mentions", "posts"]
    ]
    assert told.calls == [[("m1", 1, 0, "text 1")]], "the rows are told as before"
    # A client id's retry stores nothing and enqueues nothing.
    again, created = await meta.post_message(new(2, client="c1"), None, enqueued.outbox("x"))
    assert again.id == "m1" and not created
    # A reply: the reply's events, not its parent's.
    await meta.post_message(new(3, thread="m1"), None, enqueued.outbox("message.posted"))
    await meta.edit_message("r", "m1", "edited", 200.0, (), None, enqueued.outbox("message.edited"))
    await meta.delete_message("r", "m3", 300.0, None, enqueued.outbox("message.deleted"))
    await meta.delete_message("r", "m3", 301.0, None, enqueued.outbox("again"))  # a tombstone
    await meta.react("r", "m1", "👍", "u2", True)
    assert await payloads(meta, "all") == [
        posted,
        "mention m1 ['u2']",
        f"message.posted m3 2 'text 3' {T0}",
        f"message.edited m1 1 'edited' {T0}",
        f"message.deleted m3 2 '' {T0}",
    ]
    assert len(await payloads(meta, "posts")) == 2 and len(await payloads(meta, "mentions")) == 1
    assert [len(made) for made in enqueued.told] == [4, 2, 1, 1]
    # Refused writes enqueue nothing.
    with pytest.raises(Conflict):
        await meta.edit_message("r", "m3", "no", 400.0, None, None, enqueued.outbox("e"))
    with pytest.raises(ThreadProblem):
        await meta.post_message(new(4, thread="nope"), None, enqueued.outbox("p"))
    assert len(await payloads(meta, "all")) == 5 and len(enqueued.told) == 4


async def test_a_room_without_live_endpoints_builds_no_payload(meta: MetaStore) -> None:
    await meta.create_webhook(hook("off", health=Health(disabled_at=T0, disabled_reason="x")))
    enqueued = Enqueued()
    broken = enqueued.outbox("message.posted", fail=True)  # it would raise if asked
    message, created = await meta.post_message(new(1), None, broken)
    assert created and message.seq == 1
    await meta.edit_message("r", "m1", "edited", 200.0, None, None, broken)
    await meta.delete_message("r", "m1", 300.0, None, broken)
    assert enqueued.told == [] and await payloads(meta, "off") == []


async def test_a_write_that_fails_after_its_row_keeps_neither_row_nor_delivery(
    meta: MetaStore,
) -> None:
    """The outbox fails inside the write, after the row: the transaction rolls back whole."""
    await meta.create_webhook(hook("all"))
    await meta.post_message(new(1))
    enqueued = Enqueued()
    told = Told()
    with pytest.raises(RuntimeError):
        await meta.post_message(new(2), told, enqueued.outbox("message.posted", fail=True))
    with pytest.raises(RuntimeError):
        await meta.post_message(new(3, thread="m1"), told, enqueued.outbox("p", fail=True))
    with pytest.raises(RuntimeError):
        failing = enqueued.outbox("e", fail=True)
        await meta.edit_message("r", "m1", "lost", 200.0, None, told, failing)
    with pytest.raises(RuntimeError):
        await meta.delete_message("r", "m1", 300.0, told, enqueued.outbox("d", fail=True))
    assert await meta.last_seq("r") == 1
    assert await meta.get_message("r", "m2") is None and await meta.get_message("r", "m3") is None
    kept = await meta.get_message("r", "m1")
    assert kept is not None and (kept.text, kept.deleted, kept.reply_count) == ("text 1", False, 0)
    assert await payloads(meta, "all") == [] and enqueued.told == [] and told.calls == []
    # Nothing of the failed post was kept: its client id posts anew.
    again, created = await meta.post_message(new(4, client="c2"), None, enqueued.outbox("ok"))
    assert created and again.seq == 2
    assert await payloads(meta, "all") == [f"ok m4 2 'text 4' {T0}"]
