"""``SyncedDoc``: a pycrdt Doc kept in sync with ``/ws/{room}/{doc}``, across reconnects.

The y-websocket exchange is pycrdt's (``handle_sync_message`` and friends) with a sender of
our own instead of ``pycrdt.Provider``'s: local updates, awareness and "saved" markers leave
through one ordered outbox per connection, so a marker sent after an edit is echoed only once
that edit is on the server's disk (``saved()``). A reconnect needs no replay: the server's
SyncStep1 is answered with everything it lacks, edits made offline included.

Each closed connection is judged by its close code (``collab.client.errors``): the final
refusals raise; 4409 drops the local state and loads the doc afresh (``reloads``, and
``on_reload`` callbacks, say so: take new references from ``doc``); 4001 (a room token ran
out) reconnects at once with a fresh credential; anything else reconnects after a backoff with
jitter, reset once a connection synced.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from pycrdt import Doc, TransactionEvent, create_sync_message, create_update_message
from pycrdt import handle_sync_message as _handle_sync
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

import collab.client.frames as frames
from collab.client.errors import (
    FINAL_CLOSE_CODES,
    RELOAD,
    TOKEN_EXPIRED,
    for_close,
    for_status,
)
from collab.client.link import Link
from collab.client.presence import Presence

log = logging.getLogger("collab.client")

STEP1, STEP2 = 0, 1
CLOSE_TIMEOUT = 2.0  # the closing handshake's bound when leaving a doc


class SyncedDoc:
    def __init__(self, link: Link, room: str, name: str, doc: Doc[Any] | None = None) -> None:
        self.room = room
        self.name = name
        self.presence = Presence()
        self.generation: str | None = None
        self.reloads = 0  # times the doc was replaced after a 4409
        self.connections = 0  # sockets that synced
        self.permission_denied: str | None = None  # the server refused one of our edits
        self.on_reload: list[Callable[[Doc[Any]], None]] = []
        self._link = link
        self._outbox: MemoryObjectSendStream[bytes] | None = None
        self._synced = anyio.Event()
        self._changed = anyio.Event()
        self._remote = False
        self._saved_sent = 0
        self._saved_acked = 0
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self._subscription = self.doc.observe(self._on_update)

    # -- what a program uses -------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Until the current connection (or the next one) has synced."""
        await self._synced.wait()

    async def wait_changed(self) -> None:
        """Until the doc changes (locally or from the server)."""
        await self._changed.wait()

    def change_event(self) -> anyio.Event:
        """An event set at the next change (take it before looking, then wait on it)."""
        return self._changed

    async def saved(self) -> None:
        """Until every change made here so far is committed on the server (type 100)."""
        self._saved_sent += 1
        wanted = self._saved_sent
        if self._outbox is not None:
            self._outbox.send_nowait(frames.saved_frame(wanted))
        while self._saved_acked < wanted:
            await self._changed.wait()

    # -- the connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect, until a final refusal (raised) or cancellation."""
        backoff = self._link.backoff()
        refreshed = False
        while True:
            token = await self._link.credentials.get()
            if self.generation is None:
                self.generation = await self._link.generation(self.room, self.name)
            url = self._link.doc_url(self.room, self.name, self.generation)
            wait: float | None = None
            try:
                code, reason, synced = await self._session(url, token)
            except InvalidStatus as exc:  # refused before accept: 429, 503...
                status = exc.response.status_code
                if status not in (429, 502, 503, 504):
                    raise for_status(status, None) from None
                log.info("%s/%s: handshake refused (%s)", self.room, self.name, status)
                code, reason, synced = 0, "", False
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                log.info("%s/%s: cannot connect (%s)", self.room, self.name, exc)
                code, reason, synced = 0, "", False
            if synced:
                backoff.reset()
                refreshed = False
            if code == TOKEN_EXPIRED or (code == 4401 and not refreshed):
                if await self._link.credentials.refresh(token):
                    refreshed = True
                    continue
            if code in FINAL_CLOSE_CODES:
                raise for_close(code, reason)
            if code == RELOAD:
                self._reload()
                wait = min(backoff.next(), 1.0)  # at once, yet never a tight loop
            wait = backoff.next() if wait is None else wait
            how = f"closed {code}" if code else "no connection"
            log.info("%s/%s: %s; reconnecting in %.2fs", self.room, self.name, how, wait)
            await anyio.sleep(wait)

    async def _session(self, url: str, token: str) -> tuple[int, str, bool]:
        """One connection: (close code, reason, whether it synced)."""
        websocket = await connect(
            url,
            additional_headers={"authorization": f"Bearer {token}"},
            max_size=self._link.max_size,
            open_timeout=self._link.open_timeout,
        )
        try:
            send, receive = anyio.create_memory_object_stream[bytes](math.inf)
            synced = False
            try:
                self._outbox = send
                send.send_nowait(create_sync_message(self.doc))
                self.presence.attach(self.doc, send.send_nowait)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_send_all, websocket, receive)
                    tg.start_soon(self.presence.renew_forever)
                    synced = await self._read_all(websocket)
                    tg.cancel_scope.cancel()
            finally:
                self._outbox = None
                self.presence.detach()
                send.close()
                receive.close()
                if self._synced.is_set():
                    self._synced = anyio.Event()
        finally:
            await _close(websocket)
        code = websocket.close_code if websocket.close_code is not None else 1006
        return code, websocket.close_reason or "", synced

    async def _read_all(self, websocket: ClientConnection) -> bool:
        synced = False
        try:
            async for message in websocket:
                if isinstance(message, bytes) and message:
                    synced = self._received(message) or synced
        except ConnectionClosed:
            pass
        return synced

    def _received(self, message: bytes) -> bool:
        """Handle one frame; True when it completed the sync."""
        kind = message[0]
        try:
            if kind == frames.SYNC and len(message) > 1:
                return self._sync_message(message)
            if kind == frames.AWARENESS:
                self.presence.received(frames.read_bytes(message, 1)[0])
            elif kind == frames.AUTH:
                self.permission_denied = "permission denied"
            elif kind == frames.SAVED:
                counter, _ = frames.read_varuint(message, 1)
                self._saved_acked = max(self._saved_acked, counter)
                self.wake()
        except ValueError:
            log.warning("%s/%s: skipped an unreadable frame", self.room, self.name)
        return False

    def _sync_message(self, message: bytes) -> bool:
        self._remote = True
        try:
            reply = _handle_sync(message[1:], self.doc)
        finally:
            self._remote = False
        if message[1] == STEP1 and reply is not None and self._outbox is not None:
            self._outbox.send_nowait(reply)
            if self._saved_sent > self._saved_acked:  # asked before a reconnect: ask again
                self._outbox.send_nowait(frames.saved_frame(self._saved_sent))
        if message[1] == STEP2 and not self._synced.is_set():
            self.connections += 1
            self._synced.set()
            self.wake()
            return True
        return False

    def _on_update(self, event: TransactionEvent) -> None:
        if not self._remote and self._outbox is not None:
            self._outbox.send_nowait(create_update_message(event.update))
        self.wake()

    def _reload(self) -> None:
        """4409: the stored doc is another generation; what we hold must never go back."""
        self.doc.unobserve(self._subscription)
        self.doc = Doc()
        self._subscription = self.doc.observe(self._on_update)
        self.generation = None
        self.reloads += 1
        for callback in list(self.on_reload):
            callback(self.doc)
        self.wake()

    def wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


async def _close(websocket: ClientConnection) -> None:
    """Close the socket before the connection ends, also when it ends by cancellation (leaving
    a ``doc`` block): websockets' own ``async with`` awaits the closing handshake, which a
    cancelled scope interrupts, leaving the TCP connection open until the server times it out."""
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(CLOSE_TIMEOUT):
            await websocket.close()
        if websocket.close_code is None or not websocket.transport.is_closing():
            websocket.transport.abort()


async def _send_all(websocket: ClientConnection, frames_out: Any) -> None:
    try:
        async for frame in frames_out:
            await websocket.send(frame)
    except ConnectionClosed:
        return  # the reader sees the close; the next connection's sync resends what counts
