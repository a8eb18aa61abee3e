"""``Room``: one room through a client: its docs, its chat, and new messages as they come.

``async for message in room.messages()`` yields every message posted after it starts (or
after ``after_seq``), in seq order, each exactly once, however often the connection drops or
the server restarts: it asks the API for what follows the last seq it yielded
(``GET .../messages?after_seq=``), woken by the room's ``chat`` doc changing (a socket kept
open by the client, reconnecting like any doc) or, failing that, every ``poll`` seconds.
``room.cursor`` is that last seq: a bot that stores it resumes there after its own restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
from pycrdt import Doc

from collab.client.chat import ChatCalls, Message
from collab.client.errors import ApiError, ClientError
from collab.client.http import Api
from collab.client.link import Link
from collab.client.sync import SyncedDoc

PAGE = 200
CHAT = "chat"


class ChatWatch:
    """The room's ``chat`` doc, synced in the client's background: a change is a wake-up."""

    def __init__(self, doc: SyncedDoc) -> None:
        self.doc = doc
        self.failure: ApiError | None = None

    async def run(self) -> None:
        try:
            await self.doc.run()
        except ApiError as exc:  # removed from the room, token revoked...: messages() raises it
            self.failure = exc
            self.doc.wake()


class Host(Protocol):
    """What a room needs of its client (``collab.client.Client``)."""

    @property
    def api(self) -> Api: ...
    @property
    def link(self) -> Link: ...
    @property
    def me_id(self) -> str: ...
    def watch_chat(self, room_id: str) -> ChatWatch: ...


class Room:
    def __init__(self, client: Host, room_id: str) -> None:
        self.client = client
        self.id = room_id
        self.chat = ChatCalls(client.api, room_id)
        self.cursor: int | None = None  # the seq of the last message messages() yielded

    async def post(
        self, text: str, *, thread: str | None = None, client_id: str | None = None
    ) -> Message:
        """Post (a reply with ``thread``); retried through restarts, never posted twice."""
        return await self.chat.post(text, thread=thread, client_id=client_id)

    async def edit(self, message_id: str, text: str) -> Message:
        return await self.chat.edit(message_id, text)

    async def delete(self, message_id: str) -> None:
        await self.chat.delete(message_id)

    async def react(self, message_id: str, emoji: str, add: bool = True) -> Message:
        return await self.chat.react(message_id, emoji, add)

    @asynccontextmanager
    async def doc(self, name: str, doc: Doc[Any] | None = None) -> AsyncIterator[SyncedDoc]:
        """The doc ``name``, synced (entered once the first sync is done) until the block
        ends; a final refusal (``Forbidden``, ``NotFound``...) is raised from here."""
        synced = SyncedDoc(self.client.link, self.id, name, doc)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(synced.run)
                try:
                    await synced.wait_synced()
                    yield synced
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise unwrap(group) from None

    async def messages(
        self, *, after_seq: int | None = None, include_own: bool = False, poll: float = 30.0
    ) -> AsyncIterator[Message]:
        """New messages, oldest first, each once (see the module docstring). One's own
        messages are skipped unless ``include_own``."""
        watch = self.client.watch_chat(self.id)
        last = after_seq if after_seq is not None else await self.chat.last_seq()
        self.cursor = last
        me = self.client.me_id
        while True:
            woken = watch.doc.change_event()
            batch = await self.chat.after(last, PAGE)
            for message in batch:
                last = self.cursor = message.seq
                if include_own or message.author.id != me:
                    yield message
            if len(batch) >= PAGE:
                continue
            if watch.failure is not None:
                raise watch.failure
            with anyio.move_on_after(poll):
                await woken.wait()


def unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a task group gathered (a client error first), else the group."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    for exc in leaves:
        if isinstance(exc, ClientError):
            return exc
    return leaves[0] if len(leaves) == 1 else group
