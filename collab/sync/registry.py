"""The registry of loaded documents: load once, count references, evict idle ones after a flush.

Concurrent joiners of a cold doc share one load (single flight). A failed load leaves nothing
behind: the next joiner tries again. A doc whose last peer left stays loaded for
``room_idle_seconds``, then its commits are awaited, its log compacted, and it is dropped.

With a ``Fanout`` (several nodes on one store), every loaded doc follows the other nodes'
commits while it is loaded (``LiveDoc.load`` subscribes before reading the store; dropping a
doc unsubscribes it), and a doc deleted here is announced to them (``announce_deleted``), as
are revoked credentials (``revoke``), a deleted room (``close_room``) and role changes
(``apply_member_role``): each node re-reads what a notice names before it closes anything
(``collab.sync.revoked``, ``collab.sync.roles``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from collab import logs
from collab.errors import GenerationMismatch, NotFound, Overloaded, RoomFailed, must_propagate
from collab.fanout import ACCESS, GONE, ROLE, ROOM_GONE, Entry, Fanout, Notice
from collab.meta import Role
from collab.names import DocKey
from collab.settings import Settings
from collab.store.base import DocumentStore
from collab.sync.access import follow_role
from collab.sync.feeds import FeedHub
from collab.sync.hooks import NoHooks, SyncHooks
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer

log = logging.getLogger("collab.sync.registry")


Prepare = Callable[[LiveDoc], Awaitable[None]]


class RoomRegistry:
    """``prepare`` runs on every freshly loaded doc before anyone sees it (the chat window
    makes a ``chat`` doc equal to its messages table); if it fails, so does the load."""

    def __init__(
        self,
        store: DocumentStore,
        settings: Settings,
        hooks: SyncHooks | None = None,
        prepare: Prepare | None = None,
        fanout: Fanout | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.hooks: SyncHooks = hooks or NoHooks()
        self.fanout = fanout
        self._prepare = prepare
        self._docs: dict[DocKey, LiveDoc] = {}
        self._loading: dict[DocKey, asyncio.Future[LiveDoc]] = {}
        self._evictions: dict[DocKey, asyncio.TimerHandle] = {}
        self._evicting: set[asyncio.Task[None]] = set()
        self.loads = 0  # how many times a doc was read from the store (tests: single flight)
        # Bumped by every access change applied to open sockets (a role, a revoked credential,
        # a deleted room): a socket that was joining meanwhile was not among them and rechecks
        # its own access once joined (``collab.sync.revoked.recheck_joined``).
        self.access_changes = 0
        # the users' live streams (/ws/_me); their counts move on every node
        self.feeds = FeedHub(fanout.notify if fanout is not None else None)

    def __len__(self) -> int:
        return len(self._docs)

    def loaded_docs(self) -> list[LiveDoc]:
        return list(self._docs.values())

    def get(self, key: DocKey) -> LiveDoc | None:
        return self._docs.get(key)

    async def acquire(self, key: DocKey) -> LiveDoc:
        """The loaded doc for ``key``, loading it once however many ask at the same time."""
        live = self._docs.get(key)
        if live is None or live.failed is not None:
            future = self._loading.get(key)
            if future is None:
                await self._make_space()
                future = asyncio.get_running_loop().create_future()
                self._loading[key] = future
                loaded: LiveDoc | None = None
                try:
                    self.loads += 1
                    loaded = await LiveDoc.load(
                        key, self.store, self.settings, self.hooks, self.fanout
                    )
                    if self._prepare is not None:
                        await self._prepare(loaded)
                    live = loaded
                except BaseException as exc:
                    if loaded is not None:
                        loaded.detach()
                    # Waiters must never hang, whatever happened (a panic, a cancellation).
                    future.set_exception(RoomFailed("could not load document"))
                    future.exception()  # retrieved: no "never retrieved" warning
                    if must_propagate(exc):
                        raise
                    log.exception("could not load %s", key, extra=logs.doc_fields(key))
                    raise RoomFailed("could not load document") from exc
                finally:
                    del self._loading[key]
                if live.nodes is not None:
                    live.nodes.on_retire = functools.partial(self._forget, live)
                previous = self._docs.get(key)
                if previous is not None and previous is not live:
                    previous.detach()  # a failed copy: its sockets are closing
                self._docs[key] = live
                future.set_result(live)
            else:
                live = await asyncio.shield(future)
        live.refs += 1
        timer = self._evictions.pop(key, None)
        if timer is not None:
            timer.cancel()
        return live

    async def acquire_current(self, key: DocKey) -> LiveDoc:
        """``acquire``, then (with other nodes) catch up to the store's head, so whatever
        anyone saw "saved" on any node is in it. A loaded copy the store no longer matches
        (deleted or re-created elsewhere: its own sockets are closed) gives way to a fresh
        load; a joiner never inherits another doc's refusal."""
        for attempt in (1, 2):
            live = await self.acquire(key)
            if live.nodes is None:
                return live
            try:
                await live.nodes.catch_up()
            except (NotFound, GenerationMismatch):
                self.release(live)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self.release(live)
                raise
            return live
        raise AssertionError("unreachable")

    async def _make_space(self) -> None:
        """Keep at most ``max_rooms_loaded`` docs in memory: evict idle ones first (oldest
        idle first, each only after its commits), then refuse new loads with 1013."""
        limit = self.settings.max_rooms_loaded
        while len(self._docs) + len(self._loading) >= limit and self._evictions:
            key = next(iter(self._evictions))  # insertion order: the longest idle
            self._evictions.pop(key).cancel()
            live = self._docs.get(key)
            if live is not None and live.refs == 0:
                await self._evict(live)
        if len(self._docs) + len(self._loading) >= limit:
            raise Overloaded("too many documents loaded; try again later")

    def release(self, live: LiveDoc) -> None:
        live.refs -= 1
        if live.failed is not None:
            self._forget(live)  # the next joiner loads a fresh copy from the store
            return
        if live.refs == 0 and live.key not in self._evictions:
            loop = asyncio.get_running_loop()
            self._evictions[live.key] = loop.call_later(
                self.settings.room_idle_seconds,
                self._start_eviction,
                live,
                context=logs.detached(),  # not the last leaver's connection
            )

    def _start_eviction(self, live: LiveDoc) -> None:
        self._evictions.pop(live.key, None)
        task = asyncio.get_running_loop().create_task(self._evict(live))
        self._evicting.add(task)
        task.add_done_callback(self._evicting.discard)

    async def _evict(self, live: LiveDoc) -> None:
        try:
            await live.flush()
            if live.refs == 0:
                await live.compact()
        except Exception:
            log.exception(
                "flush before evicting %s failed", live.key, extra=logs.doc_fields(live.key)
            )
        # Only drop it if nobody joined while we flushed.
        if live.refs == 0 and self._docs.get(live.key) is live and live.failed is None:
            await live.flush()
            if live.refs == 0:
                del self._docs[live.key]
                live.detach()

    def _forget(self, live: LiveDoc) -> None:
        """Drop a failed or reset doc (if still the loaded one); its sockets are closing."""
        live.detach()
        if self._docs.get(live.key) is live:
            del self._docs[live.key]
            timer = self._evictions.pop(live.key, None)
            if timer is not None:
                timer.cancel()

    # -- access changes on open sockets (collab.sync.access decides) -----------------------

    def peers_of_room(self, room_id: str) -> list[tuple[LiveDoc, Peer]]:
        return [
            (live, peer)
            for key, live in self._docs.items()
            if key.room == room_id
            for peer in list(live.peers.values())
        ]

    def apply_member_role(
        self, room_id: str, user_id: str, member_role: Role | None, *, announce: bool = True
    ) -> None:
        """A member's role changed (None: removed): every open socket of theirs follows, and
        their live streams reload their room list. With other nodes, the change is announced
        to them (they re-read it from the MetaStore: ``collab.sync.roles``), unless it came
        from such an announcement (``announce=False``)."""
        self.access_changes += 1
        self.feeds.user_changed(user_id)
        for live, peer in self.peers_of_room(room_id):
            if peer.principal is not None and peer.principal.user_id == user_id:
                follow_role(live, peer, member_role)
        if announce and self.fanout is not None:
            self.fanout.notify(Notice(ROLE, room_id, user_id))

    def close_matching(self, code: int, reason: str, match: Callable[[Peer], bool]) -> int:
        """Close every open socket whose peer matches (revoked session, disabled user...),
        live streams included."""
        self.access_changes += 1
        closed = self.feeds.close_matching(code, reason, match)
        for live in list(self._docs.values()):
            for peer in list(live.peers.values()):
                if match(peer):
                    peer.close(code, reason)
                    closed += 1
        return closed

    def revoke(
        self, code: int, reason: str, match: Callable[[Peer], bool], *, user: str, room: str = ""
    ) -> int:
        """A credential ended: close every open socket here that rests on it (``match``), and
        have the other nodes recheck the credentials behind ``user``'s sockets (``user``
        empty: behind ``room``'s room tokens) and close those that ended. How many closed here.
        """
        closed = self.close_matching(code, reason, match)
        if self.fanout is not None:
            self.fanout.notify(Notice(ACCESS, room, user))
        return closed

    def close_room(self, room_id: str, code: int, reason: str, *, announce: bool = True) -> None:
        """The room was deleted: close its sockets, its watchers reload their lists; on the
        other nodes too (unless this came from their notice: ``announce=False``)."""
        self.access_changes += 1
        for _, peer in self.peers_of_room(room_id):
            peer.close(code, reason)
        self.feeds.room_gone(room_id)
        if announce and self.fanout is not None:
            self.fanout.notify(Notice(ROOM_GONE, room_id, ""))

    async def drop(self, key: DocKey, code: int, reason: str) -> None:
        """Forget a loaded doc that is being deleted: close its sockets, then wait for its
        in-flight commits, so the caller's delete comes last and the next joiner starts fresh.
        """
        timer = self._evictions.pop(key, None)
        if timer is not None:
            timer.cancel()
        live = self._docs.pop(key, None)
        if live is None:
            return
        live.close_all(code, reason)
        live.retire("document deleted")
        live.detach()
        await live.flush()

    def announce_deleted(self, key: DocKey, generation: str | None) -> None:
        """After the store deleted ``key`` (of ``generation``): other nodes close its sockets
        (4404) once their store agrees (they check; the announcement only makes it prompt)."""
        if self.fanout is not None and generation is not None:
            self.fanout.publish(key, Entry(0, generation, kind=GONE))

    def loaded_keys(self, room_id: str) -> list[DocKey]:
        return [key for key in self._docs if key.room == room_id]

    async def close(self) -> None:
        """Shutdown: wait for every doc's last commit."""
        for timer in self._evictions.values():
            timer.cancel()
        self._evictions.clear()
        for live in list(self._docs.values()):
            live.detach()
            try:
                await live.flush()
            except Exception:
                log.exception("final flush of %s failed", live.key, extra=logs.doc_fields(live.key))
        if self._evicting:
            await asyncio.gather(*self._evicting, return_exceptions=True)
