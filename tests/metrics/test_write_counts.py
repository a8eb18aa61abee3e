"""Frames written in place (``WRITE_NOW``) are counted exactly, by type, though per run.

In process: ``SocketObserver`` in front of an app that only keeps each socket's write, over a
server write the test refuses at will; the counters are read from the registry, as a scrape
reads them (issue 11: a payload relayed to n sockets is counted once per run, not per socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from collab.metrics import Metrics
from collab.metrics.observer import SocketObserver
from collab.sync.peer import WRITE_NOW

pytestmark = pytest.mark.anyio


class _Server:
    """One socket's server write: takes every frame unless ``refusing``."""

    def __init__(self) -> None:
        self.refusing = False
        self.taken: list[bytes] = []

    def write(self, data: bytes) -> bool:
        if self.refusing:
            return False
        self.taken.append(data)
        return True


async def _sockets(metrics: Metrics, n: int) -> tuple[list[_Server], list[Any]]:
    writes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        writes.append(scope[WRITE_NOW])

    async def nothing(*args: Any) -> Any:
        raise AssertionError

    observer = SocketObserver(app, metrics)
    servers = [_Server() for _ in range(n)]
    for server in servers:
        await observer({"type": "websocket", WRITE_NOW: server.write}, nothing, nothing)
    return servers, writes


def _counted(metrics: Metrics, kind: str) -> tuple[float, float]:
    get = metrics.registry.get_sample_value
    labels = {"type": kind}
    return (
        get("collab_messages_sent_total", labels) or 0.0,
        get("collab_sent_bytes_total", labels) or 0.0,
    )


async def test_each_frame_taken_is_counted_once_by_the_end_of_the_loop_iteration() -> None:
    metrics = Metrics()
    servers, writes = await _sockets(metrics, 3)
    update = b"\x00\x02" + b"u" * 40
    awareness = b"\x01" + b"a" * 9
    for write in writes:  # one relay: a run of three
        assert write(update)
    servers[2].refusing = True  # a paused socket: its frame waits for the sender (not here)
    assert [write(awareness) for write in writes] == [True, True, False]
    assert writes[0](update)  # the same payload again, after another one
    await asyncio.sleep(0)  # the loop's iteration ended: every run counted
    assert _counted(metrics, "sync_update") == (4, 4 * len(update))
    assert _counted(metrics, "awareness") == (2, 2 * len(awareness))
    assert writes[1](update)  # in a later iteration: counted again, once
    same_bytes = bytes(bytearray(update))  # equal, another object: another run
    assert writes[0](same_bytes) and writes[1](same_bytes)
    await asyncio.sleep(0)
    assert _counted(metrics, "sync_update") == (7, 7 * len(update))
    assert sum(len(s.taken) for s in servers) == 9


async def test_a_relay_is_counted_without_another_frame_after_it() -> None:
    """The last run of a quiet room is counted though nothing is written after it."""
    metrics = Metrics()
    _, writes = await _sockets(metrics, 49)
    update = b"\x00\x02" + b"x" * 300
    for write in writes:
        assert write(update)
    await asyncio.sleep(0)
    assert _counted(metrics, "sync_update") == (49, 49 * len(update))
    await asyncio.sleep(0)  # nothing counted twice
    assert _counted(metrics, "sync_update") == (49, 49 * len(update))
