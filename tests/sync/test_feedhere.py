"""Room presence summaries (collab.sync.feedhere) over the in-process fan-out: what is read
back is validated and bounded, a node that stopped beating is not shown and its summaries are
dropped, and nothing is written while nothing changes."""

from __future__ import annotations

import asyncio
import json

import pytest

from collab.fanout.local import LocalBus, LocalFanout
from collab.store.memory import MemoryStore
from collab.sync.feedhere import (
    LAST_KEPT,
    MAX_DOCS,
    MAX_PEOPLE,
    SharedHere,
    decode,
    encode,
    merge,
)
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


async def test_while_the_channel_is_down_the_other_nodes_people_stay_as_last_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis unreachable: a stream is not told that everyone on the other nodes left. What was
    last read is shown until the channel answers again, and then read afresh."""
    bus = LocalBus()
    fanout = LocalFanout(bus, "b")
    await fanout.start()
    registry = RoomRegistry(MemoryStore(), settings(), fanout=fanout)
    here = SharedHere(registry, fanout)
    ann = [{"id": "u1", "name": "Ann", "docs": ["notes"]}]
    bus.here["team"] = {"a": encode(ann)}
    bus.alive.add("a")
    assert await here.remote(["team", "empty"]) == {"team": ann}
    bus.set_up(False)
    assert await here.remote(["team", "empty", "unseen"]) == {"team": ann}
    assert here._unread == {"team", "empty", "unseen"}  # read again at the next tick
    bus.here["team"] = {}  # Ann left while the channel was down
    bus.set_up(True)
    told: list[str] = []
    monkeypatch.setattr(registry.feeds, "room_changed", lambda room, **_: told.append(room))
    await here._beat()
    assert sorted(told) == ["empty", "team", "unseen"] and not here._unread
    assert await here.remote(["team"]) == {}
    bus.set_up(False)
    assert await here.remote(["team"]) == {}  # nobody was last read there


async def test_what_is_kept_for_an_outage_is_bounded() -> None:
    bus = LocalBus()
    fanout = LocalFanout(bus, "b")
    await fanout.start()
    here = SharedHere(RoomRegistry(MemoryStore(), settings(), fanout=fanout), fanout)
    bus.alive.add("a")
    for n in range(LAST_KEPT + 50):
        bus.here[f"r{n}"] = {"a": encode([{"id": "u", "name": "U", "docs": ["d"]}])}
    rooms = [f"r{n}" for n in range(LAST_KEPT + 50)]
    assert len(await here.remote(rooms)) == LAST_KEPT + 50
    assert len(here._last) == LAST_KEPT
    bus.set_up(False)
    kept = await here.remote(rooms)
    assert len(kept) == LAST_KEPT and "r0" not in kept and f"r{LAST_KEPT + 49}" in kept
