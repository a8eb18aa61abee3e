"""The writer's thread: results, errors, order, a cancelled caller, stop and start again."""

from __future__ import annotations

import asyncio
import threading

import anyio
import anyio.lowlevel
import pytest

from collab.db.writerthread import WriterThread

pytestmark = pytest.mark.anyio


async def test_work_runs_in_order_on_one_thread_and_answers() -> None:
    thread = WriterThread()
    seen: list[tuple[int, str]] = []

    def work(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * 2

    results = await asyncio.gather(*(thread.run(work, i) for i in range(50)))
    assert results == [i * 2 for i in range(50)]
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"collab-writer"}

    def boom() -> None:
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        await thread.run(boom)
    thread.stop()
    assert await thread.run(work, 7) == 14  # a new thread after stop
    thread.stop()


async def test_a_cancelled_caller_waits_for_its_work_and_gets_its_result() -> None:
    """Like anyio's own ``to_thread.run_sync``: a cancel scope cancelled while the work runs
    does not abandon it; the caller sees the result and the cancellation comes at its next
    await."""
    thread = WriterThread()
    release = threading.Event()
    after: list[str] = []

    def slow() -> str:
        release.wait(5)
        return "committed"

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            result = await thread.run(slow)
            after.append(result)
            await anyio.lowlevel.checkpoint()  # the cancellation arrives here
            after.append("not reached")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, scope)
        await anyio.sleep(0.05)
        scope.cancel()
        await anyio.sleep(0.05)
        assert after == []  # still waiting for the work
        release.set()
    assert after == ["committed"]
    thread.stop()


def test_an_answer_to_a_closed_loop_is_dropped() -> None:
    thread = WriterThread()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(thread.run(lambda: 1)) == 1
    finally:
        loop.close()
    done = threading.Event()
    future: asyncio.Future[int] = asyncio.Future(loop=loop)

    def work() -> int:
        done.set()
        return 2

    thread._queue.put((work, (), future, loop))  # its loop is closed: nothing to answer
    assert done.wait(5)
    thread.stop()
