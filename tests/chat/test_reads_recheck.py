"""A node's periodic recheck of the read markers its loaded chat docs show
(``collab.chat.readnodes``): what it fixes, and what a round costs the store.

The recheck runs every ``role_recheck_interval`` (5 s by default) on every node, over every chat
doc the node has loaded. It used to read the store twice per doc each round: 200 loaded chat
docs were 400 PostgreSQL queries, ~200 ms of round trips, every 5 s per node, with nothing to
fix. A round now reads all the rooms' markers and who of their users is private in two
queries, and reads a room again (on its lock) only when its doc looks wrong.

Runs on the memory twins and on PostgreSQL (a fresh, migrated database), one node in-process:
its registry, window and chat service, and the follower under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from collab.chat import ChatService, LiveWindow, chat_key
from collab.chat.readnodes import ReadsFollower
from collab.chat.schema import read_users
from collab.fanout.local import LocalBus, LocalFanout
from collab.meta import MetaStore, NewMessage, Role, open_meta_store
from collab.settings import Settings
from collab.store import open_store
from collab.sync.hooks import NoHooks
from collab.sync.livedoc import LiveDoc
from collab.sync.registry import RoomRegistry

pytestmark = pytest.mark.anyio

ROOMS = 40
READS = ("list_read_markers", "list_read_markers_of", "get_private_read_markers")


@pytest.fixture(params=["memory", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    return "memory://" if request.param == "memory" else str(request.getfixturevalue("pg_url"))


class CountedReads:
    """Counts the calls of the store reads a recheck makes (the store itself answers them)."""

    def __init__(self, meta: MetaStore) -> None:
        self.calls = 0
        for name in READS:
            setattr(meta, name, self._counted(getattr(meta, name)))

    def _counted(self, read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any) -> Any:
            self.calls += 1
            return await read(*args)

        return counted


@pytest.fixture
async def node(store_url: str) -> AsyncIterator[tuple[MetaStore, ReadsFollower, list[LiveDoc]]]:
    """One node with ``ROOMS`` rooms' chat docs loaded; in each, alice and bob read the
    room's one message (both markers public, both shown)."""
    store, meta = open_store(store_url), open_meta_store(store_url)
    await store.open()
    await meta.open()
    settings = Settings(store="memory://")
    window = LiveWindow(meta, 5)
    registry = RoomRegistry(store, settings, NoHooks(), window.prepare)
    chat = ChatService(meta, registry, window, settings)
    follower = ReadsFollower(chat, LocalFanout(LocalBus(), "n0"), interval=3600)
    users: dict[str, str] = {}
    for name in ("alice", "bob"):
        user = await meta.upsert_oidc_user(
            "test", name, name=name, email=None, email_verified=False, picture=None
        )
        users[name] = user.id
    held: list[LiveDoc] = []
    for n in range(ROOMS):
        room = f"room{n}"
        await meta.create_room(room, room, users["alice"])
        await meta.set_member(room, users["bob"], Role.editor)
        new = NewMessage(room, f"m{n}", users["alice"], "alice", None, f"c{n}", "hi", 100.0)
        await meta.post_message(new)
        await meta.set_read_markers(room, {users["alice"]: 1, users["bob"]: 1})
        held.append(await registry.acquire(chat_key(room)))
    assert all(read_users(live.doc) == set(users.values()) for live in held)
    yield meta, follower, held
    for live in held:
        registry.release(live)
    await registry.close()
    await meta.close()
    await store.close()


async def test_a_recheck_round_with_nothing_to_fix_reads_the_store_twice(
    node: tuple[MetaStore, ReadsFollower, list[LiveDoc]],
) -> None:
    meta, follower, _ = node
    counted = CountedReads(meta)
    await follower.recheck_all()
    assert counted.calls <= 2, f"{counted.calls} store reads for {ROOMS} docs, none wrong"


async def test_a_recheck_round_hides_a_private_marker_and_shows_a_public_one_again(
    node: tuple[MetaStore, ReadsFollower, list[LiveDoc]],
) -> None:
    """Bob's switch made on another node, its notice lost: the store says private, every doc
    here still shows him. One round removes him everywhere; switched back, one round puts
    him back everywhere."""
    meta, follower, held = node
    bob = next(u.id for u in await meta.list_users() if u.name == "bob")
    await meta.set_private_read_markers(bob, True)
    await follower.recheck_all()
    assert [bob in read_users(live.doc) for live in held] == [False] * ROOMS
    await meta.set_private_read_markers(bob, False)
    await follower.recheck_all()
    assert [bob in read_users(live.doc) for live in held] == [True] * ROOMS
    counted = CountedReads(meta)
    await follower.recheck_all()  # settled: nothing more to do
    assert counted.calls <= 2
