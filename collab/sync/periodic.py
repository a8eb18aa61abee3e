"""A background round every ``interval`` seconds, for the sync layer's sweeps and rechecks.

``step`` runs after each wait; a round that raises is logged and the next one runs as usual,
so one failed query (the store down for a moment) never ends the loop. ``stop`` cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from collab import logs

log = logging.getLogger("collab.sync")


class Periodic:
    def __init__(self, interval: float, step: Callable[[], Awaitable[Any]], failed: str) -> None:
        self.interval = interval
        self._step = step
        self._failed = failed  # what the log says when a round raises
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=logs.detached())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._step()
            except Exception:
                log.exception(self._failed)
