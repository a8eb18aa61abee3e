"""One node's end of the notice channel, shared by the parts that follow other nodes' changes.

A Fanout delivers the node-wide notices to one watcher per node; several parts of a node act
on them (``collab.sync.roles``: role changes; ``collab.sync.revoked``: revoked credentials and
deleted rooms; ``collab.sync.feeds``: the live streams' counts; ``collab.chat.readnodes``:
private read markers). ``NoticeRouter`` is that one watcher: each part registers with it
(``watch_notices``, as it would with the Fanout), and it hands every notice and every resync
to each of them, a failing one logged and skipped.

``NoticeFollower`` is what the role, access and read-marker followers share: the notices of
their kinds queue a key each (in arrival order, once), and one task per node follows them one
at a time; every ``interval`` seconds, at once after a resync, and instead of a flood past
``PENDING_LIMIT`` queued keys, it rechecks everything it follows. A failed step is logged and
the next round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Hashable
from typing import Any, Generic, Protocol, TypeVar

from collab import logs
from collab.fanout import Fanout, Notice, NoticeWatcher

log = logging.getLogger("collab.sync.notices")

PENDING_LIMIT = 10_000  # notices waiting to be followed; past it, one full recheck instead

K = TypeVar("K", bound=Hashable)


class NoticeSource(Protocol):
    """Where a part of a node registers for notices: the router (or a Fanout, in tests)."""

    async def watch_notices(self, watcher: NoticeWatcher) -> None: ...


class NoticeRouter:
    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self._watchers: list[NoticeWatcher] = []
        self._watching = False

    async def watch_notices(self, watcher: NoticeWatcher) -> None:
        """Deliver the other nodes' notices to ``watcher`` too, from now on."""
        self._watchers.append(watcher)
        if not self._watching:
            self._watching = True
            await self.fanout.watch_notices(self)

    def notify(self, notice: Notice) -> None:
        self.fanout.notify(notice)

    def on_notice(self, notice: Notice) -> None:
        for watcher in list(self._watchers):
            try:
                watcher.on_notice(notice)
            except Exception:
                log.exception("a %s notice failed in %r", notice.kind, watcher)

    def on_notice_resync(self) -> None:
        for watcher in list(self._watchers):
            try:
                watcher.on_notice_resync()
            except Exception:
                log.exception("a notice resync failed in %r", watcher)


class NoticeFollower(Generic[K]):
    """Follows the notices of ``kinds`` (see the module docstring); subclasses say how."""

    kinds: frozenset[str] = frozenset()
    failed = "following notices failed (tried again next round)"  # the log's words

    def __init__(self, notices: NoticeSource, *, interval: float) -> None:
        self.notices = notices
        self.interval = interval
        self.rechecks = 0  # full rechecks done (tests, logs)
        self._pending: dict[K, None] = {}
        self._recheck_all = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def key_of(self, notice: Notice) -> K:
        """What to follow for ``notice`` (one of ``kinds``)."""
        raise NotImplementedError

    async def follow(self, key: K) -> None:
        raise NotImplementedError

    async def recheck_all(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self.notices.watch_notices(self)
        self._task = asyncio.get_running_loop().create_task(self._run(), context=logs.detached())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- what the fan-out delivers (collab.fanout.NoticeWatcher) ---------------------------

    def on_notice(self, notice: Notice) -> None:
        if notice.kind not in self.kinds:
            return
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.clear()
            self._recheck_all = True
        else:
            self._pending[self.key_of(notice)] = None
        self._wake.set()

    def on_notice_resync(self) -> None:
        self._recheck_all = True
        self._wake.set()

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, last + self.interval - time.monotonic())):
                    await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = next(iter(self._pending))
                del self._pending[key]
                await self._guarded(self.follow(key))
            if self._recheck_all or time.monotonic() >= last + self.interval:
                self._recheck_all = False
                last = time.monotonic()
                if await self._guarded(self.recheck_all()):
                    self.rechecks += 1

    async def _guarded(self, work: Coroutine[Any, Any, object]) -> bool:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(self.failed)
            return False
        return True
