"""``messages()`` after a refusal: a client that was removed from a room (its chat socket
closed 4404) and added back listens again, instead of raising the old refusal forever."""

from __future__ import annotations

import functools

import anyio
import httpx
import pytest

from collab.client import Client, NotFound
from tests.api.conftest import Api
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


async def test_messages_listens_again_once_the_member_is_back(server: CollabServer) -> None:
    api = Api(server)
    bot, alice = api.user("bot"), api.user("alice")
    room = api.room("r", owner=api.dev, **{bot.user_id: "commenter", alice.user_id: "commenter"})
    members = f"/rooms/{room}/members"

    async def call(fn: functools.partial[httpx.Response]) -> None:
        r = await anyio.to_thread.run_sync(fn)
        assert r.status_code in (201, 204), r.text

    with anyio.fail_after(30):
        async with Client(server.http_url, bot.token) as client:
            chat = client.room(room)

            async def remove() -> None:
                await anyio.sleep(0.5)
                await call(functools.partial(api.dev.http.delete, f"{members}/{bot.user_id}"))

            # The first listener is ended by the removal (its socket closed 4404).
            async with anyio.create_task_group() as tg:
                tg.start_soon(remove)
                with pytest.raises(NotFound):
                    async for _ in chat.messages(poll=1):
                        pass
            await call(
                functools.partial(
                    api.dev.http.post, members, json={"user_id": bot.user_id, "role": "commenter"}
                )
            )
            chat = client.room(room)  # a new listener: the client's chat socket is shared
            seen: list[str] = []

            async def listen() -> None:
                async for message in chat.messages(poll=1):
                    seen.append(message.text)
                    return

            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                while chat.cursor is None:
                    await anyio.sleep(0.01)
                body = {"text": "welcome back", "client_id": "w1"}
                await call(functools.partial(alice.http.post, f"/rooms/{room}/messages", json=body))
            assert seen == ["welcome back"]
    api.close()
