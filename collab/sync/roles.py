"""Role changes across nodes: a member's new role reaches the sockets every node holds.

The node whose API changes a membership writes it to the MetaStore, applies it to its own
sockets at once and announces it (``RoomRegistry.apply_member_role``: a ``role`` notice names
the room and the user, never the role). Every other node's ``RoleFollower`` re-reads that
member's role from its MetaStore, the record, and applies it to its own sockets the same way
(``collab.sync.access.follow_role``): a downgrade refuses later writes (opted in: message 103),
an upgrade pulls the edits refused before, a removal closes 4403.

A notice can be lost (Redis down or restarted, a node dying between its write and its
publish), so every ``interval`` seconds each node also re-reads the role behind each of its
open doc sockets and applies those that changed; and at once when the channel says notices may
have been missed. One task per node; reads one at a time; a failed read is logged, and the next
round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from collab import logs
from collab.auth.policy import effective_role
from collab.fanout import ROLE, Notice
from collab.meta import MetaStore
from collab.sync.notices import NoticeSource
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.sync.roles")

PENDING_LIMIT = 10_000  # notices waiting to be followed; past it, one full recheck instead


class RoleFollower:
    def __init__(
        self, registry: RoomRegistry, meta: MetaStore, fanout: NoticeSource, *, interval: float
    ) -> None:
        self.registry = registry
        self.meta = meta
        self.fanout = fanout
        self.interval = interval
        self.rechecks = 0  # full rechecks done (tests, logs)
        self._pending: dict[tuple[str, str], None] = {}  # (room, user), in arrival order
        self._recheck_all = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.fanout.watch_notices(self)
        self._task = asyncio.get_running_loop().create_task(self._run(), context=logs.detached())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- what the fan-out delivers (collab.fanout.NoticeWatcher) ---------------------------

    def on_notice(self, notice: Notice) -> None:
        if notice.kind != ROLE:
            return
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.clear()
            self._recheck_all = True
        else:
            self._pending[(notice.room, notice.user)] = None
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
                room, user = next(iter(self._pending))
                del self._pending[(room, user)]
                await self._guarded(self.follow(room, user))
            if self._recheck_all or time.monotonic() >= last + self.interval:
                self._recheck_all = False
                last = time.monotonic()
                await self._guarded(self.recheck())

    async def _guarded(self, work: Coroutine[Any, Any, object]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following role changes failed (tried again next round)")

    async def follow(self, room: str, user: str) -> None:
        """Another node changed ``user``'s membership of ``room``: apply what the store says."""
        member = await self.meta.get_member(room, user)
        role = member.role if member is not None else None
        self.registry.apply_member_role(room, user, role, announce=False)

    async def recheck(self) -> int:
        """Re-read the role behind every open doc socket; apply the ones that changed. Returns
        how many (room, user) pairs were read."""
        pairs: dict[tuple[str, str], None] = {}
        for live in self.registry.loaded_docs():
            for peer in list(live.peers.values()):
                if peer.principal is not None:
                    pairs[(live.key.room, peer.principal.user_id)] = None
        for room, user in pairs:
            member = await self.meta.get_member(room, user)
            role = member.role if member is not None else None
            changed = any(
                effective_role(peer.principal, role) != peer.role
                for _, peer in self.registry.peers_of_room(room)
                if peer.principal is not None and peer.principal.user_id == user
            )
            if changed:
                log.info("a role change in %s reached this node by recheck", room)
                self.registry.apply_member_role(room, user, role, announce=False)
        self.rechecks += 1
        return len(pairs)
