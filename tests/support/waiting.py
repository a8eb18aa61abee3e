"""Waiting for a condition under a deadline: how a test waits, never with a bare sleep.

Where the thing under test offers an event, wait on it (``RawPeer.wait_for``,
``JsPeer.wait_event``). ``wait_until`` is for the rest, polled: a log line, a file's size, a
counter, a metric. ``poll_until`` is its twin for synchronous code (a child process starting).
A sleep that stays in a test is the scenario itself (pacing a client, letting a configured
interval pass to show that something did not happen) and says so in a comment.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable

import anyio


async def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    *,
    interval: float = 0.01,
    what: str | Callable[[], object] = "",
) -> None:
    """Return as soon as ``predicate()`` is true; TimeoutError after ``timeout`` seconds.

    ``predicate`` may be a coroutine function (a scrape, a query), awaited each round. ``what``
    describes the condition in the error; a callable is called then, to show the last state.
    """
    try:
        with anyio.fail_after(timeout):
            while not await _holds(predicate):
                await anyio.sleep(interval)
    except TimeoutError:
        detail = what() if callable(what) else what
        message = f"not true within {timeout}s" + (f": {detail}" if detail else "")
        raise TimeoutError(message) from None


async def _holds(predicate: Callable[[], object]) -> bool:
    result = predicate()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


def poll_until(predicate: Callable[[], object], timeout: float, *, interval: float = 0.05) -> bool:
    """``predicate()`` until it is true (True) or ``timeout`` seconds passed (False).

    For synchronous code only, where no event loop can wait: starting a child process and
    asking it whether it is ready. ``predicate`` may raise to give up early (the child exited).
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
