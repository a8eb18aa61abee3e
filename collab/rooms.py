"""The registry of loaded documents: load once, count references, evict idle ones after a flush.

Concurrent joiners of a cold doc share one load (single flight). A failed load leaves nothing
behind: the next joiner tries again. A doc whose last peer left stays loaded for
``room_idle_seconds``, then its commits are awaited, its log compacted, and it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from collab import logs
from collab.auth.policy import doc_access, effective_role
from collab.errors import Overloaded, RoomFailed, must_propagate
from collab.meta.base import Role
from collab.names import DocKey
from collab.peer import Peer
from collab.room import Room
from collab.settings import Settings
from collab.store.base import DocumentStore
from collab.wire import framing

if TYPE_CHECKING:
    from collab.metrics import Metrics

log = logging.getLogger("collab.rooms")


class RoomRegistry:
    def __init__(self, store: DocumentStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._rooms: dict[DocKey, Room] = {}
        self._loading: dict[DocKey, asyncio.Future[Room]] = {}
        self._evictions: dict[DocKey, asyncio.TimerHandle] = {}
        self._evicting: set[asyncio.Task[None]] = set()
        self.loads = 0  # how many times a doc was read from the store (tests: single flight)
        self.on_refused_write: Callable[[Room, Peer], None] | None = None
        self.metrics: Metrics | None = None

    def __len__(self) -> int:
        return len(self._rooms)

    def loaded_rooms(self) -> list[Room]:
        return list(self._rooms.values())

    def get(self, key: DocKey) -> Room | None:
        return self._rooms.get(key)

    async def acquire(self, key: DocKey) -> Room:
        """The loaded doc for ``key``, loading it once however many ask at the same time."""
        room = self._rooms.get(key)
        if room is None or room.failed is not None:
            future = self._loading.get(key)
            if future is None:
                await self._make_room()
                future = asyncio.get_running_loop().create_future()
                self._loading[key] = future
                try:
                    self.loads += 1
                    room = await Room.load(key, self.store, self.settings)
                except BaseException as exc:
                    # Waiters must never hang, whatever happened (a panic, a cancellation).
                    future.set_exception(RoomFailed("could not load document"))
                    future.exception()  # retrieved: no "never retrieved" warning
                    if must_propagate(exc):
                        raise
                    log.exception("could not load %s", key, extra=logs.doc_fields(key))
                    raise RoomFailed("could not load document") from exc
                finally:
                    del self._loading[key]
                room.on_refused_write = self.on_refused_write
                room.metrics = self.metrics
                self._rooms[key] = room
                future.set_result(room)
            else:
                room = await asyncio.shield(future)
        room.refs += 1
        timer = self._evictions.pop(key, None)
        if timer is not None:
            timer.cancel()
        return room

    async def _make_room(self) -> None:
        """Keep at most ``max_rooms_loaded`` docs in memory: evict idle ones first (oldest
        idle first, each only after its commits), then refuse new loads with 1013."""
        limit = self.settings.max_rooms_loaded
        while len(self._rooms) + len(self._loading) >= limit and self._evictions:
            key = next(iter(self._evictions))  # insertion order: the longest idle
            self._evictions.pop(key).cancel()
            room = self._rooms.get(key)
            if room is not None and room.refs == 0:
                await self._evict(room)
        if len(self._rooms) + len(self._loading) >= limit:
            raise Overloaded("too many documents loaded; try again later")

    def release(self, room: Room) -> None:
        room.refs -= 1
        if room.failed is not None:
            if self._rooms.get(room.key) is room:
                del self._rooms[room.key]  # the next joiner loads a fresh copy from the store
            return
        if room.refs == 0 and room.key not in self._evictions:
            loop = asyncio.get_running_loop()
            self._evictions[room.key] = loop.call_later(
                self.settings.room_idle_seconds,
                self._start_eviction,
                room,
                context=logs.detached(),  # not the last leaver's connection
            )

    def _start_eviction(self, room: Room) -> None:
        self._evictions.pop(room.key, None)
        task = asyncio.get_running_loop().create_task(self._evict(room))
        self._evicting.add(task)
        task.add_done_callback(self._evicting.discard)

    async def _evict(self, room: Room) -> None:
        try:
            await room.flush()
            if room.refs == 0:
                await room.compact()
        except Exception:
            log.exception(
                "flush before evicting %s failed", room.key, extra=logs.doc_fields(room.key)
            )
        # Only drop it if nobody joined while we flushed.
        if room.refs == 0 and self._rooms.get(room.key) is room and room.failed is None:
            await room.flush()
            if room.refs == 0:
                del self._rooms[room.key]

    # -- access changes on open sockets ----------------------------------------------------

    def _peers_of_room(self, room_id: str) -> list[tuple[Room, Peer]]:
        return [
            (room, peer)
            for key, room in self._rooms.items()
            if key.room == room_id
            for peer in list(room.peers.values())
        ]

    def apply_member_role(self, room_id: str, user_id: str, member_role: Role | None) -> None:
        """A member's role changed (None: removed): every open socket follows at once.

        Downgrade: later writes are refused. Upgrade to a writer: the server sends SyncStep1 so
        the client's earlier refused edits are pulled. Removal: closed 4403.
        """
        for room, peer in self._peers_of_room(room_id):
            principal = peer.principal
            if principal is None or principal.user_id != user_id:
                continue
            role = effective_role(principal, member_role)
            if role is None:
                peer.close(4403, "removed from room")
                continue
            can_write = doc_access(role, room.key.doc).can_write
            if can_write and peer.readonly:
                peer.readonly = False
                peer.denied_once = False
                peer.send(framing.sync_step1(room.doc.get_state()))
            peer.readonly = not can_write

    def close_matching(self, code: int, reason: str, match: Callable[[Peer], bool]) -> int:
        """Close every open socket whose peer matches (revoked session, disabled user...)."""
        closed = 0
        for room in list(self._rooms.values()):
            for peer in list(room.peers.values()):
                if match(peer):
                    peer.close(code, reason)
                    closed += 1
        return closed

    def close_room(self, room_id: str, code: int, reason: str) -> None:
        for _, peer in self._peers_of_room(room_id):
            peer.close(code, reason)

    async def drop(self, key: DocKey, code: int, reason: str) -> None:
        """Forget a loaded doc that is being deleted: close its sockets, then wait for its
        in-flight commits, so the caller's delete comes last and the next joiner starts fresh.
        """
        timer = self._evictions.pop(key, None)
        if timer is not None:
            timer.cancel()
        room = self._rooms.pop(key, None)
        if room is None:
            return
        room.close_all(code, reason)
        if room.failed is None:
            room.failed = RoomFailed("document deleted")  # refuses later frames; never evicted
        await room.flush()

    def loaded_keys(self, room_id: str) -> list[DocKey]:
        return [key for key in self._rooms if key.room == room_id]

    async def close(self) -> None:
        """Shutdown: wait for every doc's last commit."""
        for timer in self._evictions.values():
            timer.cancel()
        self._evictions.clear()
        for room in list(self._rooms.values()):
            try:
                await room.flush()
            except Exception:
                log.exception("final flush of %s failed", room.key, extra=logs.doc_fields(room.key))
        if self._evicting:
            await asyncio.gather(*self._evicting, return_exceptions=True)
