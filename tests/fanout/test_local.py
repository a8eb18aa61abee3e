"""The in-process fan-out twin (collab.fanout.local) while its bus is down and when it comes
back: what Redis being unreachable means to the nodes, without Redis."""

from __future__ import annotations

import anyio
import pytest

from collab.fanout.base import ROLE, AwarenessRecord, Entry, Notice
from collab.fanout.local import LocalBus, LocalFanout
from collab.names import DocKey

KEY = DocKey("team", "notes")


class Watcher:
    """A subscriber, a notice watcher and an awareness watcher at once: what each was told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def on_entry(self, entry: Entry) -> None:
        self.told.append("entry")

    def on_resync(self) -> None:
        self.told.append("resync")

    def on_notice(self, notice: Notice) -> None:
        self.told.append("notice")

    def on_notice_resync(self) -> None:
        self.told.append("notice resync")

    def on_awareness(self, record: AwarenessRecord) -> None:
        self.told.append("awareness")

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        self.told.append("refused")

    def on_awareness_resync(self) -> None:
        self.told.append("awareness resync")

    def on_awareness_gap(self) -> None:
        self.told.append("awareness gap")


def healthy(fanout: LocalFanout) -> bool:
    return fanout.healthy  # read afresh: the bus changes under it


@pytest.mark.anyio
async def test_while_the_bus_is_down_nothing_crosses_and_its_return_resyncs_everyone() -> None:
    bus = LocalBus()
    a, b = LocalFanout(bus, "a"), LocalFanout(bus, "b")
    on_a, on_b = Watcher(), Watcher()
    for fanout, watcher in ((a, on_a), (b, on_b)):
        await fanout.start()
        await fanout.subscribe(KEY, watcher)
        await fanout.watch_notices(watcher)
        assert await fanout.follow_awareness(KEY, watcher) == []

    bus.set_up(False)
    assert not healthy(a) and a.degraded(KEY)
    a.notify(Notice(ROLE, "team", "user-1"))
    a.publish_awareness(KEY, [AwarenessRecord(7, 1, "user-1", b"{}")], on_a)
    assert a.stats.publish_dropped == 2 and a.stats.published == 0
    assert await b.awareness_states(KEY) == []
    await anyio.sleep(0.01)
    assert on_b.told == []  # nothing crossed

    bus.set_up(False)  # already down: nobody is told anything
    bus.set_up(True)
    assert healthy(a) and not a.degraded(KEY)
    for watcher in (on_a, on_b):  # every node catches up from the store and Redis
        assert sorted(watcher.told) == ["awareness resync", "notice resync", "resync"]

    a.notify(Notice(ROLE, "team", "user-1"))
    await anyio.sleep(0.01)
    assert on_b.told[-1] == "notice" and on_a.told[-1] != "notice"  # not to its sender
    b.unfollow_awareness(KEY, on_b)
    b.unfollow_awareness(KEY, on_b)  # twice: nothing left to drop
    await a.close()
    await b.close()
