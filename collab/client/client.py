"""``Client``: a program's connection to one collab server, as a user or a bot.

    async with Client("https://collab.example.com", token=api_token) as client:
        room = client.room("team")
        async with room.doc("notes") as notes:
            notes.doc.get("text", type=Text).insert(0, "hello ")
            await notes.saved()
        async for message in room.messages():
            if message.text == "/ping":
                await room.post("pong", thread=message.id)

A credential is a personal API token or a room token (``token=``), or a callback returning a
fresh one (``token_source=``), asked again before a room token expires and when the server
refuses the current one. Background work (the chat doc that wakes ``messages()``) runs in the
client's task group, which ends with the ``async with``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
import httpx2
from anyio.abc import TaskGroup

from collab.client.backoff import Backoff
from collab.client.credentials import Credentials, TokenSource
from collab.client.http import Api
from collab.client.link import DEFAULT_MAX_SIZE, Link, ws_base_for
from collab.client.room import CHAT, ChatWatch, Room, unwrap
from collab.client.sync import SyncedDoc

# A frame from the server is at most a whole doc: the server's max_doc_size plus framing.
FRAME_SLACK = 1024 * 1024


class Client:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        token_source: TokenSource | None = None,
        timeout: float = 10.0,
        backoff: Callable[[], Backoff] = Backoff,
        transport: httpx2.AsyncBaseTransport | None = None,
        startup_retry: float = 60.0,
    ) -> None:
        self.credentials = Credentials(token, token_source)
        self.api = Api(url, self.credentials, timeout=timeout, transport=transport, backoff=backoff)
        self.link = Link(self.api, self.credentials, ws_base_for(url), backoff=backoff)
        self.me: dict[str, Any] = {}
        self.startup_retry = startup_retry
        self._watches: dict[str, ChatWatch] = {}
        self._tg: TaskGroup | None = None

    @property
    def me_id(self) -> str:
        return str(self.me.get("id", ""))

    async def __aenter__(self) -> Client:
        try:
            self.me = await self.api.call("GET", "/me", retry=self.startup_retry)
            server = await self.api.call("GET", "/server", retry=self.startup_retry)
            limits = server.get("limits", {}) if isinstance(server, dict) else {}
            self.link.limits = dict(limits)
            largest = max(int(limits.get("max_doc_size", 0)), int(limits.get("ws_max_size", 0)))
            self.link.max_size = largest + FRAME_SLACK if largest else DEFAULT_MAX_SIZE
        except BaseException:
            await self.api.aclose()
            raise
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise unwrap(group) from None
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True):
                await self.api.aclose()
        return None

    def room(self, room_id: str) -> Room:
        return Room(self, room_id)

    def watch_chat(self, room_id: str) -> ChatWatch:
        """The room's chat doc, synced in the background from the first ask to the end (or to
        a final refusal, which ``messages()`` raises: the next ask opens it again, so a member
        removed and added back listens again)."""
        watch = self._watches.get(room_id)
        if watch is None or watch.failure is not None:
            if self._tg is None:
                raise RuntimeError("use the client inside `async with`")
            watch = self._watches[room_id] = ChatWatch(SyncedDoc(self.link, room_id, CHAT))
            self._tg.start_soon(watch.run)
        return watch

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        """Any other API call (``/api/v1`` + ``path``): JSON in, JSON out, typed errors."""
        return await self.api.call(method, path, **kw)


def connect(url: str, token: str | None = None, **kw: Any) -> Client:
    """``async with connect(url, token) as client``: a :class:`Client`."""
    return Client(url, token, **kw)


__all__ = ["Client", "connect"]
