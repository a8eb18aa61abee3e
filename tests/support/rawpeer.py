"""A scripted Yjs peer over raw `websockets`: a pycrdt Doc plus the y-websocket framing.

Unlike pycrdt.Provider it exposes what tests need to see: the "saved" echoes, awareness frames,
the close code, and exactly which frames were sent. ``close_code_of`` only connects and reports
how the server closed the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from typing import Any
from urllib.parse import urlsplit

import anyio
from pycrdt import Doc, Text, handle_sync_message
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab.wire import framing
from tests.support.frames import chat_replies, chat_request


class RawPeer:
    def __init__(self, websocket: ClientConnection, doc: Doc[Any] | None = None) -> None:
        self.websocket = websocket
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self.text = self.doc.get("text", type=Text)
        self.saved = 0
        self.synced = asyncio.Event()
        self.changed = asyncio.Event()
        self.awareness_frames: list[bytes] = []
        self.other_frames: list[bytes] = []
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, url: str, *, sync: bool = True, doc: Doc[Any] | None = None, **kw: Any
    ) -> RawPeer:
        """Connect and sync; pass a previous peer's ``doc`` to reconnect as y-websocket does
        (the sync exchange then sends the server whatever it lacks)."""
        websocket = await connect(url, max_size=None, open_timeout=10, **kw)
        peer = cls(websocket, doc)
        peer._reader = asyncio.get_running_loop().create_task(peer._read())
        if sync:
            await peer.websocket.send(framing.sync_step1(peer.doc.get_state()))
            await asyncio.wait_for(peer.synced.wait(), 10)
        return peer

    async def _read(self) -> None:
        try:
            async for message in self.websocket:
                assert isinstance(message, bytes)
                if message[0] == framing.MSG_SYNC:
                    reply = handle_sync_message(message[1:], self.doc)
                    if message[1] == framing.SYNC_STEP2:
                        self.synced.set()
                    if reply is not None:
                        await self.websocket.send(reply)
                    self.changed.set()
                elif message[0] == framing.MSG_AWARENESS:
                    self.awareness_frames.append(message)
                    self.changed.set()
                elif message[0] == framing.MSG_SAVED:
                    self.saved = framing.decode_message(message).counter  # type: ignore[union-attr]
                    self.changed.set()
                else:
                    self.other_frames.append(message)
                    self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.websocket.close_code
            self.closed.set()
            self.changed.set()

    async def insert(self, index: int, chunk: str) -> bytes:
        """Edit the local doc and send exactly that edit as one update frame."""
        before = self.doc.get_state()
        self.text.insert(index, chunk)
        update = self.doc.get_update(before)
        await self.websocket.send(framing.sync_update(update))
        return update

    async def delete(self, index: int, length: int) -> None:
        before = self.doc.get_state()
        del self.text[index : index + length]
        await self.websocket.send(framing.sync_update(self.doc.get_update(before)))

    async def request_saved(self, counter: int) -> None:
        await self.websocket.send(framing.saved(counter))

    async def send_request(self, request: object) -> None:
        """Send a chat request (type 101): a JSON-able object, or ``bytes`` as the body."""
        await self.websocket.send(chat_request(request))

    def replies(self, client_id: object = ...) -> list[dict[str, Any]]:
        """The chat replies (type 102) received so far (those echoing ``client_id`` if given)."""
        found = chat_replies(self.other_frames)
        return found if client_id is ... else [r for r in found if r["client_id"] == client_id]

    async def ask(self, request: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send a request and return its reply (the next one echoing its ``client_id``)."""
        client_id = request.get("client_id")
        seen = len(self.replies(client_id))
        await self.send_request(request)
        await self.wait_for(lambda: len(self.replies(client_id)) > seen, timeout)
        return self.replies(client_id)[seen]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    def abort(self) -> None:
        """Drop the TCP connection with no closing handshake (a killed tab)."""
        transport = self.websocket.transport
        transport.abort()


async def close_code_of(url: str, **kw: object) -> int | None:
    """Connect and return the close code the server sends (None: it stayed open)."""
    async with connect(url, open_timeout=10, **kw) as ws:  # type: ignore[arg-type]
        try:
            with anyio.fail_after(3):
                while True:
                    await ws.recv()
        except TimeoutError:
            return None
        except Exception:
            pass
        return ws.close_code


async def raw_socket(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand (after its 101), so that a test decides exactly which bytes
    go in one write."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer
