"""One node's end of the notice channel, shared by the parts that follow other nodes' changes.

A Fanout delivers the node-wide notices to one watcher per node; several parts of a node act
on them (``collab.sync.roles``: role changes; ``collab.sync.revoked``: revoked credentials and
deleted rooms; ``collab.sync.feeds``: the live streams' counts). ``NoticeRouter`` is that one
watcher: each part registers with it (``watch_notices``, as it would with the Fanout), and it
hands every notice and every resync to each of them, a failing one logged and skipped.
"""

from __future__ import annotations

import logging
from typing import Protocol

from collab.fanout import Fanout, Notice, NoticeWatcher

log = logging.getLogger("collab.sync.notices")


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
