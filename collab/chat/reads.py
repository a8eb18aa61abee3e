"""Read markers as the chat writes them: one batch per room at a time (group commit).

A client marks often (on every message it shows), and every member of a busy room does so
after every post. Writing each marker alone would cost a transaction, a doc change, a commit
and a relay to every peer, one after another under the room's lock, ahead of the next post.
So markers wait in their room's batch while the one before is written: a batch is one
transaction (``Reads.set_read_markers``) and one change of the ``chat`` doc's ``reads``, however
many markers it holds, and each caller is answered with their marker once both are durable.
Several markers of one user in one batch are one (the highest).

Who sees a marker is the user's setting (``private_read_markers``): private markers are stored
and count for their own unread, but never enter the doc's ``reads``; each write removes the
entry of a user whose markers are private, and the live window drops them on every load.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from collab import logs
from collab.errors import RoomFailed, must_propagate
from collab.meta import MetaStore

log = logging.getLogger("collab.chat.reads")

Flush = Callable[[str, dict[str, int]], Awaitable[dict[str, int]]]


async def private_readers(meta: MetaStore, user_ids: Iterable[str]) -> set[str]:
    """Which of these users keep their read markers private."""
    wanted = list(user_ids)
    return await meta.get_private_read_markers(wanted) if wanted else set()


@dataclass
class _Batch:
    wanted: dict[str, int] = field(default_factory=dict)
    waiters: list[tuple[str, asyncio.Future[int]]] = field(default_factory=list)


class MarkerBatches:
    """Per room, the markers waiting for the batch being written; ``flush`` writes one batch
    (room id, user id -> wanted seq) and answers each user's marker after it. One task per
    room runs while it has batches to write, then ends."""

    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self._pending: dict[str, _Batch] = {}
        self._running: dict[str, asyncio.Task[None]] = {}

    async def submit(self, room_id: str, user_id: str, up_to: int) -> int:
        """The user's marker in the room once ``up_to`` (or a higher one) is written."""
        batch = self._pending.setdefault(room_id, _Batch())
        batch.wanted[user_id] = max(up_to, batch.wanted.get(user_id, up_to))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        batch.waiters.append((user_id, waiter))
        if room_id not in self._running:
            self._running[room_id] = loop.create_task(self._run(room_id), context=logs.detached())
        return await waiter

    async def _run(self, room_id: str) -> None:
        try:
            while (batch := self._pending.pop(room_id, None)) is not None:
                try:
                    found = await self._flush(room_id, batch.wanted)
                except BaseException as exc:
                    _settle(batch, exc if isinstance(exc, Exception) else None)
                    if must_propagate(exc):
                        raise
                    continue
                for user_id, waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_result(found[user_id])
        finally:
            del self._running[room_id]
            leftover = self._pending.pop(room_id, None)
            if leftover is not None:  # cancelled (shutdown): nobody may wait for ever
                _settle(leftover, None)


def _settle(batch: _Batch, exc: Exception | None) -> None:
    """Fail every waiter of a batch that could not be written."""
    failure = exc if exc is not None else RoomFailed("read markers not written")
    for _, waiter in batch.waiters:
        if not waiter.done():
            waiter.set_exception(failure)
            waiter.exception()  # retrieved: a caller that went away leaves no warning
