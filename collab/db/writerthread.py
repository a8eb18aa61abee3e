"""The writer connection's own thread: every commit handed over with the least work per call.

Each group commit of every document goes through here, so the hand-over is on the update
path. anyio's ``to_thread.run_sync`` costs several times the SQL of a small commit: a capacity
limiter and its run-vars, a checkpoint, a ``queue.Queue`` (a lock and a condition per put)
and an idle-worker pool. This thread takes work from a ``SimpleQueue`` (C, lock-free for
the putter) and answers through ``call_soon_threadsafe``, one call per commit.

The wait is shielded as anyio's is (``abandon_on_cancel=False``): a caller whose cancel scope is
cancelled while its work runs still gets the result once the work is done, and the
cancellation arrives at its next await (a bare ``Task.cancel`` is not held off, by anyio
either: ``Database`` keeps the connection safe with its busy lock). The work is never
abandoned half-way: the thread runs one piece of work at a time, in order.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

_Work = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], asyncio.AbstractEventLoop]


class WriterThread:
    def __init__(self, name: str = "collab-writer") -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.trips = 0  # pieces of work handed over so far

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the thread; its result or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._queue.put((fn, args, future, loop))
        self.trips += 1
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    def stop(self) -> None:
        """Let the thread end after the work queued before (a later ``run`` starts another)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread = None

    def _work(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            fn, args, future, loop = work
            try:
                result = fn(*args)
            except BaseException as exc:
                _answer(loop, _fail, future, exc)
            else:
                _answer(loop, _succeed, future, result)
            del work, future, fn, args  # nothing held while waiting for the next


def _answer(
    loop: asyncio.AbstractEventLoop,
    settle: Callable[[asyncio.Future[Any], Any], None],
    future: asyncio.Future[Any],
    value: Any,
) -> None:
    try:
        loop.call_soon_threadsafe(settle, future, value)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
