"""pycrdt's Provider over a `websockets` connection: the Python client of a real user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pycrdt import Doc, Provider
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class WebsocketChannel:
    """The small Channel adapter pycrdt.Provider needs (path, send, recv, async iteration)."""

    def __init__(self, websocket: ClientConnection, path: str) -> None:
        self._websocket = websocket
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration() from None

    async def send(self, message: bytes) -> None:
        await self._websocket.send(message)

    async def recv(self) -> bytes:
        message = await self._websocket.recv()
        assert isinstance(message, bytes)
        return message


@asynccontextmanager
async def provider(
    url: str, doc: Doc[Any] | None = None, **kw: Any
) -> AsyncIterator[tuple[Doc[Any], Provider]]:
    """A synced pycrdt Doc connected to ``url`` (``kw`` go to websockets' connect)."""
    doc = doc if doc is not None else Doc()
    async with connect(url, max_size=None, **kw) as websocket:
        async with Provider(doc, WebsocketChannel(websocket, url)) as prov:
            await prov.synced.wait()
            yield doc, prov
