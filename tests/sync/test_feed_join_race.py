"""A live stream (``/ws/_me``) whose credential is revoked while it is being opened (after the
handshake read the credential, before the stream joined the hub that the revocation closes)
does not outlive it: the registry's ``access_changes`` moved, so the stream rereads its
credential once it has joined and closes 4401, as a doc socket does (``recheck_joined``).
On one node nothing else would ever close it: the periodic recheck runs with other nodes only.
In-process, with a real Starlette WebSocket over a scripted ASGI channel, the real registry,
hub and memory MetaStore; the revocation is the one the API makes (store, then registry)."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from starlette.types import Message
from starlette.websockets import WebSocket

from collab.auth.principal import Principal
from collab.meta.memory import MemoryMetaStore
from collab.store.memory import MemoryStore
from collab.sync.feedserve import FeedSource, meta_counts, serve_feed
from collab.sync.registry import RoomRegistry
from tests.sync.conftest import settings

pytestmark = pytest.mark.anyio


class IdleClient:
    """The client's side: connected, then silent until ``leave`` (what a browser tab does)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.connected = False

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        await self.gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def closes(self) -> list[int]:
        return [m["code"] for m in self.sent if m["type"] == "websocket.close"]


async def opened(
    meta: MemoryMetaStore, registry: RoomRegistry, principal: Principal, epoch: int
) -> tuple[IdleClient, asyncio.Task[None]]:
    client = IdleClient()
    scope = {"type": "websocket", "path": "/ws/_me", "headers": [], "query_string": b""}
    websocket = WebSocket(scope, client.receive, client.send)
    await websocket.accept()
    source = FeedSource(meta, registry, meta_counts(meta))
    args = (websocket, principal, registry, source, settings(), epoch)
    return client, asyncio.ensure_future(serve_feed(*args))


async def test_a_session_revoked_while_the_stream_opens_closes_it_once_joined() -> None:
    meta = MemoryMetaStore()
    registry = RoomRegistry(MemoryStore(), settings())
    user = await meta.upsert_oidc_user(
        "https://idp.example", "alice", name="Alice", email=None, email_verified=False, picture=None
    )
    kept, _ = await meta.create_session(user.id, ttl=3600)
    revoked, _ = await meta.create_session(user.id, ttl=3600)

    def principal(session_id: str) -> Principal:
        return Principal(user.id, "Alice", via="session", session_id=session_id)

    epoch = registry.access_changes  # the handshake starts; it reads the (valid) session...
    # ...and meanwhile the user signs that session out: the store, then the open sockets.
    await meta.revoke_session(revoked.id)
    registry.revoke(4401, "session revoked", lambda p: False, user=user.id)
    with anyio.fail_after(5):
        client, stream = await opened(meta, registry, principal(revoked.id), epoch)
        await stream  # it ends on its own: the credential was found ended once joined
    assert client.closes() == [4401]
    assert registry.feeds.count(user.id) == 0
    # A stream whose credential still holds stays, though access changed meanwhile.
    with anyio.fail_after(5):
        client, stream = await opened(meta, registry, principal(kept.id), epoch)
        while not any(m["type"] == "websocket.send" for m in client.sent):
            await asyncio.sleep(0.01)  # its first frame: the room list
        assert client.closes() == [] and not stream.done()
        client.gone.set()
        await stream
