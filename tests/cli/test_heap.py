"""``collab serve`` freezes its startup heap out of the garbage collector (collab.cli.heap):
a full collection under load then walks only what was made since (bench/profiles/
CHAT-LATENCY.md). The server class ``collab serve`` runs, on real uvicorn, in process."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import uvicorn

from collab.cli.heap import freeze_startup_heap
from collab.cli.serve import _server_class

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Nothing frozen before; what a test froze goes back to the collector after."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("not called: the test sends no request")


class _Cycle:
    other: Any = None


def test_startup_garbage_is_freed_and_the_rest_frozen(unfrozen: None) -> None:
    kept, dropped = _Cycle(), _Cycle()
    kept.other, dropped.other = kept, dropped  # two cycles: one referenced, one garbage
    gone = weakref.ref(dropped)
    del dropped
    assert gone() is not None  # a cycle: only the collector frees it
    frozen = freeze_startup_heap()
    assert gone() is None
    assert frozen == gc.get_freeze_count() > 0
    assert kept.other is kept and kept not in gc.get_objects()  # alive, never walked again


async def test_the_served_server_freezes_its_heap_once_started(unfrozen: None) -> None:
    assert gc.get_freeze_count() == 0
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = _server_class(uvicorn.Server)(config)
    ports: list[int] = []
    server.on_started = ports.append
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        with anyio.fail_after(10):
            while not ports:
                await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
    finally:
        server.should_exit = True
        with anyio.fail_after(10):
            await task
