"""Room presence summaries (collab.sync.feedhere) over the in-process fan-out: what is read
back is validated and bounded, a node that stopped beating is not shown and its summaries are
dropped, and nothing is written while nothing changes."""

from __future__ import annotations

import asyncio
import json

import pytest

from collab.fanout.local import LocalBus, LocalFanout
from collab.store.memory import MemoryStore
from collab.sync.feedhere import MAX_DOCS, MAX_PEOPLE, SharedHere, decode, encode, merge
from collab.sync.registry import RoomRegistry
from tests.sync.conftest import settings

pytestmark = pytest.mark.anyio


def test_a_summary_read_back_is_validated_and_bounded() -> None:
    person = {"id": "u1", "name": "Ann", "docs": ["a", "b"]}
    assert decode(encode([person])) == [person]
    for bad in (b"nope", b"{}", b'[{"id": 1, "name": "x", "docs": []}]', b'[{"id": "u"}]'):
        assert decode(bad) is None
    many = [{"id": f"u{i}", "name": "n", "docs": [f"d{j}" for j in range(40)]} for i in range(300)]
    found = decode(json.dumps(many).encode())
    assert found is not None and len(found) == MAX_PEOPLE
    assert all(len(p["docs"]) == MAX_DOCS for p in found)


def test_a_person_on_two_nodes_is_listed_once_with_both_docs() -> None:
    on_a = [{"id": "u1", "name": "Ann", "docs": ["a"]}]
    on_b = [{"id": "u1", "name": "Ann", "docs": ["b"]}, {"id": "u0", "name": "Bo", "docs": ["a"]}]
    assert merge(on_a, on_b) == [
        {"id": "u0", "name": "Bo", "docs": ["a"]},
        {"id": "u1", "name": "Ann", "docs": ["a", "b"]},
    ]


async def test_a_dead_nodes_summary_is_hidden_then_dropped() -> None:
    bus = LocalBus()
    fanout = LocalFanout(bus, "b")
    await fanout.start()
    here = SharedHere(RoomRegistry(MemoryStore(), settings(), fanout=fanout), fanout)
    people = [{"id": "u1", "name": "Ann", "docs": ["notes"]}]
    bus.here["team"] = {"a": encode(people), "b": encode([])}
    bus.alive.add("a")
    assert await here.remote(["team", "other"]) == {"team": people}  # b's own: left out
    bus.alive.discard("a")  # a stopped beating
    assert await here.remote(["team"]) == {"team": []}
    await here._drop_dead()
    assert "a" not in bus.here["team"]


async def test_nothing_is_written_while_nothing_changes() -> None:
    fanout = LocalFanout(LocalBus(), "a")
    await fanout.start()
    registry = RoomRegistry(MemoryStore(), settings(), fanout=fanout)
    here = SharedHere(registry, fanout, tick=0.01)
    here.start()
    try:
        await asyncio.sleep(0.2)
        assert here.writes == 0
        here.changed("team")  # nobody there: a removal, no notice
        await asyncio.sleep(0.2)
        assert here.writes == 1 and registry.feeds.announced == 0
    finally:
        await here.stop()
