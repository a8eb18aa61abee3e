"""collab.client against a real server: docs kept in sync, presence, chat, messages()."""

from __future__ import annotations

import functools

import anyio
import pytest
from pycrdt import Text

from collab.client import Client
from tests.api.conftest import Api
from tests.support.pyclient import provider
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


async def test_a_doc_is_kept_in_sync_both_ways(server: CollabServer) -> None:
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "editor"})
    async with Client(server.http_url, bot.token) as client:
        assert client.me_id == bot.user_id
        assert client.link.max_size > 64 * 1024 * 1024
        async with client.room(room).doc("notes") as notes:
            text = notes.doc.get("text", type=Text)
            text.insert(0, "from the bot")
            await notes.saved()
            async with provider(server.ws_url(room, "notes")) as (other, _):
                seen = other.get("text", type=Text)
                assert str(seen) == "from the bot"
                with anyio.fail_after(10):
                    seen.insert(len(seen), "; from a user")
                    while str(text) != "from the bot; from a user":
                        await notes.wait_changed()
    api.close()


async def test_messages_yields_new_ones_once(server: CollabServer) -> None:
    api = Api(server)
    bot, alice = api.user("bot"), api.user("alice")
    room = api.room("r", owner=api.dev, **{bot.user_id: "commenter", alice.user_id: "commenter"})
    alice.http.post(f"/rooms/{room}/messages", json={"text": "old", "client_id": "a0"})
    async with Client(server.http_url, bot.token) as client:
        chat = client.room(room)
        seen: list[str] = []

        async def consume() -> None:
            async for message in chat.messages():
                seen.append(message.text)
                if message.text == "m1":
                    await chat.post("reply", thread=message.id)
                if len(seen) == 3:
                    return

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                while chat.cursor is None:  # messages() has started: later posts are new
                    await anyio.sleep(0.01)
                for i in range(3):
                    body = {"text": f"m{i}", "client_id": f"a{i + 1}"}
                    send = functools.partial(alice.http.post, f"/rooms/{room}/messages", json=body)
                    r = await anyio.to_thread.run_sync(send)
                    assert r.status_code == 201
        assert seen == ["m0", "m1", "m2"]
    api.close()
