"""``collab serve``'s serving loop (collab.cli.serve): it ticks once a second, not ten times,
so an idle server's event loop sleeps; the Date header still changes every second; a stop
wakes it at once. The server class ``collab serve`` runs, on real uvicorn, in process, and a
real ``collab serve`` stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import pytest
import uvicorn

from collab.cli.serve import TICK, _server_class
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("not called: the test sends no request")


class _Counting(_server_class(uvicorn.Server)):  # type: ignore[misc]
    """Records when each tick ran, and the Date header it left."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ticks: list[float] = []
        self.dates: list[float] = []

    async def on_tick(self, counter: int) -> bool:
        self.ticks.append(time.monotonic())
        done = bool(await super().on_tick(counter))
        self.dates.append(_date(self))
        return done


def _date(server: Any) -> float:
    [date] = [v for k, v in server.server_state.default_headers if k == b"date"]
    return parsedate_to_datetime(date.decode()).timestamp()


async def test_the_loop_ticks_once_a_second_and_a_stop_wakes_it_at_once() -> None:
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = _Counting(config)
    task = asyncio.get_running_loop().create_task(server._serve())  # no signal handlers here
    try:
        with anyio.fail_after(10):
            while len(server.ticks) < 3:
                await asyncio.sleep(0.01)
        gaps = [b - a for a, b in zip(server.ticks[1:], server.ticks[2:], strict=False)]
        assert all(gap >= TICK * 0.9 for gap in gaps)  # uvicorn's own loop: every 0.1 s
        # the Date header refreshed at every tick (to the second): it moved since the first
        assert server.dates[-1] > server.dates[0] and abs(server.dates[-1] - time.time()) <= 2
        await asyncio.sleep(0.05)  # just after a tick: the next is ~1 s away
        asked = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        with anyio.fail_after(TICK / 2):  # sooner than the next tick would come
            await task
        assert server.ticks[-1] - asked < TICK / 2
    finally:
        server.should_exit = True
        with anyio.fail_after(10):
            await task


async def test_sigterm_stops_a_real_server_promptly(server: CollabServer) -> None:
    assert server.proc is not None
    asked = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    with anyio.fail_after(10):
        while server.proc.poll() is None:
            await anyio.sleep(0.02)
    assert server.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises it once done
    print(f"stopped {time.monotonic() - asked:.2f} s after SIGTERM")
