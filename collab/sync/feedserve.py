"""Serving one ``/ws/_me`` stream (``collab.sync.feeds`` has the hub and the why).

The endpoint has already admitted and authenticated the socket (handshake rate, Origin for
cookies, ``max_connections_per_user``); here it must be a personal credential (a session, the
dev token or a personal API token: a room token or ticket sees one room, not a user's list),
and its user may hold at most ``MAX_FEEDS_PER_USER`` streams. A credential revoked while the
stream was opening (not yet among the streams the revocation closed) is found once it has
joined, and the stream closes 4401. The server sends JSON text frames:

- ``{"type": "rooms", "rooms": [...], "dms": [...]}`` first, and again whenever the user's
  rooms change; each item ``{"id", "title", "kind", "role", "unread", "mentions", "here"}``
  (a DM also has ``peer``), ``here`` being who has a socket open in the room and on which docs:
  ``[{"id", "name", "docs": [...]}]`` on every node (``collab.sync.feedhere``);
- ``{"type": "room", "room": {"id", "unread", "mentions", "here"}}`` when one of them changes.

The client sends nothing: any frame it sends closes the stream (1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.websockets import WebSocket

from collab.auth.principal import Principal
from collab.meta import MetaStore, RoomRecord
from collab.settings import Settings
from collab.sync.expiry import ExpiryTimer
from collab.sync.feedhere import local_here, merge
from collab.sync.feeds import COALESCE, Feed, FeedHub
from collab.sync.peer import GONE, REFUSED_AS, Peer
from collab.sync.registry import RoomRegistry
from collab.sync.revoked import CLOSE_CODE, ended_credentials

log = logging.getLogger("collab.feeds")

# (user id, room ids) -> {room id: (unread, mentions)}
Counts = Callable[[str, Sequence[str]], Awaitable[dict[str, tuple[int, int]]]]
PERSONAL = {"session", "dev", "api_token"}


def meta_counts(meta: MetaStore) -> Counts:
    """The counts ``GET /rooms`` shows (``Reads.unread_counts``: one query, capped)."""

    async def counts(user_id: str, room_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        found = await meta.unread_counts(user_id, room_ids) if room_ids else {}
        return {room: (c.unread, c.mentions) for room, c in found.items()}

    return counts


class TextSocket:
    """The peer's socket, sending its frames as text (they are UTF-8 JSON)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send_bytes(self, data: bytes) -> None:
        await self.websocket.send_text(data.decode())

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.websocket.close(code, reason)


class FeedSource:
    """What a stream reads: the user's rooms (meta), counts, and presence (the registry)."""

    def __init__(self, meta: MetaStore, registry: RoomRegistry, counts: Counts) -> None:
        self.meta = meta
        self.registry = registry
        self.counts = counts

    async def here(self, room_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Who is in each room: this node's sockets, and the other nodes' (``feedhere``)."""
        board = self.registry.feeds.board
        remote = await board.remote(room_ids) if board is not None else {}
        return {
            room: merge(local_here(self.registry, room), remote.get(room, [])) for room in room_ids
        }

    async def rooms(self, principal: Principal) -> dict[str, Any]:
        user_id = principal.user_id
        rooms = await self.meta.list_rooms_for(user_id)
        dms = await self.meta.list_dms_for(user_id)
        ids = [room.id for room, _ in rooms] + [room.id for room in dms]
        counts = await self.counts(user_id, ids)
        here = await self.here(ids)
        listed = [self._item(room, principal.cap(role).name, counts, here) for room, role in rooms]
        dm_items = []
        for room in dms:
            item = self._item(room, "editor", counts, here)
            peer_id = room.dm_peer(user_id)
            peer = await self.meta.get_user(peer_id) if peer_id else None
            item["peer"] = (
                {"id": peer.id, "name": peer.name, "handle": peer.handle} if peer else None
            )
            dm_items.append(item)
        return {"type": "rooms", "rooms": listed, "dms": dm_items}

    def _item(
        self,
        room: RoomRecord,
        role: str,
        counts: dict[str, tuple[int, int]],
        here: dict[str, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        unread, mentions = counts.get(room.id, (0, 0))
        return {
            "id": room.id,
            "title": room.title,
            "kind": room.kind,
            "role": role,
            "unread": unread,
            "mentions": mentions,
            "here": here.get(room.id, []),
        }

    async def changes(self, user_id: str, room_ids: Sequence[str]) -> list[dict[str, Any]]:
        counts = await self.counts(user_id, room_ids)
        here = await self.here(room_ids)
        found = []
        for room_id in room_ids:
            unread, mentions = counts.get(room_id, (0, 0))
            people = here.get(room_id, [])
            found.append({"id": room_id, "unread": unread, "mentions": mentions, "here": people})
        return found


def _frame(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


async def _pump(feed: Feed, hub: FeedHub, source: FeedSource, principal: Principal) -> None:
    """Send the room list, then each change, coalesced, until the stream closes."""
    last: dict[str, tuple[Any, ...]] = {}
    while not feed.peer.closing:
        await feed.wake.wait()
        await asyncio.sleep(COALESCE)
        feed.wake.clear()
        if feed.reload:
            feed.reload = False
            feed.dirty.clear()
            listing = await source.rooms(principal)
            items = listing["rooms"] + listing["dms"]
            hub.watch(feed, {item["id"] for item in items})
            feed.listed = {item["id"]: item["role"] for item in items}  # the recheck compares
            last = {item["id"]: _state(item) for item in items}
            feed.peer.send(_frame(listing))
            continue
        dirty = sorted(feed.dirty & feed.rooms)
        feed.dirty.clear()
        for change in await source.changes(feed.user_id, dirty) if dirty else []:
            if last.get(change["id"]) != _state(change):
                last[change["id"]] = _state(change)
                feed.peer.send(_frame({"type": "room", "room": change}))


def _state(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["unread"], item["mentions"], json.dumps(item["here"]))


async def serve_feed(
    websocket: WebSocket,
    principal: Principal,
    registry: RoomRegistry,
    source: FeedSource,
    settings: Settings,
    epoch: int | None = None,
) -> None:
    """The stream of one accepted socket, until it closes. ``epoch``: the registry's
    ``access_changes`` before the credential was read (``ended_while_opening``)."""
    if principal.via not in PERSONAL:
        await websocket.close(4403, "a personal credential is required")
        return
    hub = registry.feeds
    peer = Peer(
        TextSocket(websocket),
        max_queue_bytes=settings.outbound_queue_bytes,
        send_timeout=settings.send_timeout,
        readonly=True,
        principal=principal,
        on_slow_consumer=registry.hooks.slow_consumer,
    )
    feed = Feed(principal.user_id, peer)
    if not hub.add(feed):
        await websocket.close(1013, "too many live streams for this user")
        return
    if epoch is not None and registry.access_changes != epoch:
        ended = await ended_while_opening(source.meta, feed)
        if ended is not None:
            hub.remove(feed)
            await websocket.close(CLOSE_CODE, ended)
            return
    loop = asyncio.get_running_loop()
    peer.start()
    pump = loop.create_task(_pump(feed, hub, source, principal))
    expiry = ExpiryTimer(peer)
    expiry.start()
    try:
        await _read_until_closed(websocket, peer, pump)
    except Exception:
        log.exception("live stream of %s failed", principal.user_id)
        peer.close(1011, "internal error")
    finally:
        expiry.cancel()
        hub.remove(feed)
        peer.close(GONE)  # no-op when a close was already asked for
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await peer.stopped()


async def ended_while_opening(meta: MetaStore, feed: Feed) -> str | None:
    """Why the stream's credential ended, if it did: a revocation between the handshake's read
    of it and ``FeedHub.add`` closed the streams then listed, not this one (it bumped
    ``access_changes``, which is why this is asked). The store has it by now: a revocation is
    written before the sockets are closed. None: still valid."""
    for _, reason in await ended_credentials(meta, [feed.peer]):
        return reason
    return None


async def _read_until_closed(websocket: WebSocket, peer: Peer, pump: asyncio.Task[None]) -> None:
    """Wait for the client to go (or for a close asked elsewhere); a frame from it is refused."""
    receive = asyncio.ensure_future(websocket.receive())
    closed = asyncio.ensure_future(peer.closed.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {receive, closed, pump}, return_when=asyncio.FIRST_COMPLETED
            )
            if pump in done:
                pump.result()  # a failure is the caller's to log and close 1011
                return
            if closed in done:
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            # Counted as what it is, a frame of a kind the stream does not take (1008 alone
            # would count a rate refusal: collab_messages_refused_total).
            websocket.scope[REFUSED_AS] = "unsupported"
            peer.close(1008, "this stream takes no messages")
            receive = asyncio.ensure_future(websocket.receive())
    finally:
        for task in (receive, closed):
            task.cancel()
