"""The live window with several nodes in one process: registries and chat services on one store
and one meta store, their chat docs kept in step by fan-outs on one ``LocalBus``.

Each node holds its own copy of a room's ``chat`` doc and its own window over it. Whatever
node a post goes through, and however the posts interleave, every copy settles on the table's
latest ``chat_live_messages`` messages, ``info`` says the room's last seq and the line below
the window, and the table's ``archived`` flags agree with that line: the window moves once,
for the whole room, not once per node. A node that loads the doc late keeps the line; a larger
window (after a restart) brings archived messages back.

Every test runs on the memory twins (one store and one meta store shared) and on PostgreSQL
(a store and a meta store per node on one database: nodes as in production, where a row is
shown in the doc after its commit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from pycrdt import Map

from collab.chat import Actor, ChatService, LiveWindow, chat_key
from collab.chat.schema import doc_fields
from collab.fanout.local import LocalBus, LocalFanout
from collab.meta import Message, MetaStore, Role, open_meta_store
from collab.settings import Settings
from collab.store import open_store
from collab.store.base import DocumentStore
from collab.sync.hooks import NoHooks
from collab.sync.livedoc import LiveDoc
from collab.sync.registry import RoomRegistry
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM = "r"
SIZE = 5


class ChatNode:
    """One node: its registry (following the others through the bus), window and service."""

    def __init__(
        self, store: DocumentStore, meta: MetaStore, bus: LocalBus, name: str, size: int
    ) -> None:
        settings = Settings(store="memory://", chat_live_messages=size)
        self.window = LiveWindow(meta, size)
        fanout = LocalFanout(bus, name)
        self.registry = RoomRegistry(store, settings, NoHooks(), self.window.prepare, fanout)
        self.chat = ChatService(meta, self.registry, self.window, settings)
        self.live: LiveDoc | None = None
        self.closed = False

    async def hold(self) -> LiveDoc:
        """Keep the room's chat doc loaded here (as a reader's socket would)."""
        self.live = await self.registry.acquire(chat_key(ROOM))
        return self.live

    def shown(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(messages, info) of this node's copy, as plain values."""
        assert self.live is not None
        doc = self.live.doc
        messages: dict[str, Any] = doc.get("messages", type=Map).to_py() or {}
        info: dict[str, Any] = doc.get("info", type=Map).to_py() or {}
        return messages, info

    async def close(self) -> None:
        """Stop: commit what it holds and stop following the others."""
        if self.closed:
            return
        self.closed = True
        if self.live is not None:
            self.registry.release(self.live)
        await self.registry.close()


@pytest.fixture(params=["memory", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    else:
        yield request.getfixturevalue("pg_url")  # a fresh, migrated database


Cluster = Callable[..., Awaitable[tuple[MetaStore, list[ChatNode]]]]


@pytest.fixture
async def cluster(store_url: str) -> AsyncIterator[Cluster]:
    """``await cluster(n, held=n, size=SIZE)``: (a meta store to look at, n more nodes on the
    same bus and data), the first ``held`` of them holding the chat doc."""
    bus = LocalBus()
    closing: list[Any] = []
    made: list[ChatNode] = []
    memory: dict[str, Any] = {}  # the memory twins: one of each, shared by every node

    async def opened(kind: str) -> Any:
        if store_url == "memory://" and kind in memory:
            return memory[kind]
        thing = open_store(store_url) if kind == "store" else open_meta_store(store_url)
        await thing.open()
        closing.append(thing)
        memory[kind] = thing
        return thing

    async def make(
        n: int, held: int | None = None, size: int = SIZE
    ) -> tuple[MetaStore, list[ChatNode]]:
        nodes: list[ChatNode] = []
        for _ in range(n):
            store, meta = await opened("store"), await opened("meta")
            nodes.append(ChatNode(store, meta, bus, f"n{len(made) + len(nodes)}", size))
        made.extend(nodes)
        for node in nodes[:held]:
            await node.hold()
        return await opened("meta"), nodes

    yield make
    for node in made:
        await node.close()
    for thing in closing:
        await thing.close()


def actor(n: int) -> Actor:
    return Actor(f"u{n}", f"User {n}", None, Role.commenter)


async def table(meta: MetaStore) -> list[Message]:
    return await meta.list_messages(ROOM, limit=10_000)


async def settled(meta: MetaStore, nodes: list[ChatNode], size: int = SIZE) -> None:
    """Every node's copy shows the table's latest ``size`` messages, as the table holds them,
    and the right ``info``; the table's flags put the line at the same place."""
    rows = await table(meta)
    last = len(rows)
    line = max(0, last - size)
    expected_messages = {m.id: doc_fields(m) for m in rows[line:]}
    expected_info = {"last_seq": last, "archived_through": line}

    def each_copy_settled() -> bool:
        return all(node.shown() == (expected_messages, expected_info) for node in nodes)

    def what() -> object:
        return [
            (sorted(m["seq"] for m in shown.values()), info)
            for shown, info in (node.shown() for node in nodes)
        ]

    await wait_until(each_copy_settled, 10, what=what)
    assert [m.seq for m in rows] == list(range(1, last + 1))  # gapless
    assert [m.seq for m in rows if m.archived] == list(range(1, line + 1))


async def test_posts_through_two_nodes_in_turn_keep_one_window(cluster: Cluster) -> None:
    meta, (a, b) = await cluster(2)
    for n in range(12):
        node = (a, b)[n % 2]
        await node.chat.post(ROOM, actor(n % 2), f"message {n}", f"c{n}")
    await settled(meta, [a, b])


async def test_concurrent_posts_and_retries_through_two_nodes_settle_on_one_window(
    cluster: Cluster,
) -> None:
    """Two authors post 20 messages each at once, one through each node, several in flight;
    then each retries its client ids through the other node: 40 gapless seqs, one row per
    client id, every retry answered with the first post's message, one window everywhere."""
    meta, (a, b) = await cluster(2)
    first: dict[tuple[int, int], Message] = {}

    async def posts(node: ChatNode, author: int, numbers: range, retry: bool) -> None:
        for n in numbers:
            message, created = await node.chat.post(ROOM, actor(author), f"{author}:{n}", f"c{n}")
            assert created is not retry
            if retry:
                before = first[(author, n)]
                assert (message.id, message.seq) == (before.id, before.seq)
            else:
                first[(author, n)] = message

    with anyio.fail_after(60):
        for retry in (False, True):
            async with anyio.create_task_group() as tg:
                for author, node in enumerate((a, b) if not retry else (b, a)):
                    for lane in range(4):  # four posts in flight per author
                        tg.start_soon(posts, node, author, range(lane, 20, 4), retry)
    rows = await table(meta)
    assert len(rows) == 40
    assert {(m.author, m.client_id) for m in rows} == {
        (f"u{author}", f"c{n}") for author in (0, 1) for n in range(20)
    }
    await settled(meta, [a, b])


async def test_two_nodes_changing_one_message_at_once_settle_on_the_tables_latest(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message is one value in the doc: two nodes' writes of it that neither saw before its
    own (the fan-out slower than the second write) are concurrent, and the doc keeps one of
    them, whichever the table wrote last. Tried both ways round (one of the two makes the doc
    keep the earlier write): each time the node whose write lost shows the table's latest
    again, and every copy settles on it."""
    meta, (a, b) = await cluster(2)
    held: list[tuple[LocalFanout, tuple[Any, ...]]] | None = None
    deliver = LocalFanout._deliver

    def slow_deliver(fanout: LocalFanout, *args: Any) -> None:
        if held is None:
            deliver(fanout, *args)
        else:
            held.append((fanout, args))

    monkeypatch.setattr(LocalFanout, "_deliver", slow_deliver)
    for first, second in ((a, b), (b, a)):
        message, _ = await first.chat.post(ROOM, actor(0), "react to me", f"c-{id(first)}")
        await settled(meta, [a, b])
        held = []  # neither node sees the other's write before its own
        await first.chat.react(ROOM, actor(1), message.id, "👍", True)
        await second.chat.react(ROOM, actor(2), message.id, "🎉", True)
        late, held = held, None
        for fanout, args in late:
            deliver(fanout, *args)
        await settled(meta, [a, b])
        for node in (a, b):
            assert node.shown()[0][message.id]["reactions"] == {"👍": ["u1"], "🎉": ["u2"]}


async def test_a_node_loading_the_doc_late_keeps_the_line(cluster: Cluster) -> None:
    """A third node loads the doc after the others moved the line: it shows the same window,
    and its load brings no archived message back, in the doc or in the table."""
    meta, (a, b, late) = await cluster(3, held=2)
    for n in range(9):
        await (a, b)[n % 2].chat.post(ROOM, actor(0), f"message {n}", f"c{n}")
    await late.hold()  # from the store and the table
    await settled(meta, [a, b, late])
    await a.chat.post(ROOM, actor(1), "after the late load", "d0")
    await settled(meta, [a, b, late])


async def test_a_larger_window_brings_archived_messages_back(cluster: Cluster) -> None:
    """The line is never a floor for a load: a node started with a larger window (the other
    one stopped) shows more messages again, and the table's flags follow."""
    meta, (small,) = await cluster(1)
    for n in range(9):
        await small.chat.post(ROOM, actor(0), f"message {n}", f"c{n}")
    await settled(meta, [small])
    await small.close()
    meta, (large,) = await cluster(1, size=8)
    await settled(meta, [large], size=8)
