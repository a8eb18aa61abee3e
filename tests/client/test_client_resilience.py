"""collab.client when things go wrong: final refusals raise typed errors, a token expiring
is replaced through the callback, 4409 reloads, a flood of 429s is waited out; presence."""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio
import psutil
import pytest
from pycrdt import Text

from collab.client import BadRequest as ClientBadRequest
from collab.client import Client, Forbidden, NotFound, RateLimited, Unauthorized
from tests.api.conftest import Api
from tests.support.jspeer import JsPeer
from tests.support.pyclient import provider
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


async def test_final_refusals_raise_typed_errors(server: CollabServer) -> None:
    api = Api(server)
    outsider, viewer = api.user("outsider"), api.user("viewer")
    room = api.room("r", owner=api.dev, **{viewer.user_id: "viewer"})
    with anyio.fail_after(20):
        async with Client(server.http_url, outsider.token) as client:
            with pytest.raises(NotFound):  # not a member: 4404, as for a missing room
                async with client.room(room).doc("notes"):
                    pass
            with pytest.raises(NotFound):  # the API's answer for a room one is not in
                await client.room(room).post("hi")
        async with Client(server.http_url, viewer.token) as client:
            with pytest.raises(NotFound):  # a doc a viewer may not create: 4404
                async with client.room(room).doc("nothing-here"):
                    pass
            with pytest.raises(ClientBadRequest):  # a malformed name: 4400
                async with client.room(room).doc("bad name"):
                    pass
            with pytest.raises(Forbidden):  # a viewer may not post
                await client.room(room).post("hi")
        with pytest.raises(Unauthorized):
            async with Client(server.http_url, "not-a-token"):
                pass
    api.close()


async def test_a_revoked_token_stops_the_client_with_unauthorized(server: CollabServer) -> None:
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "editor"})
    token_id = bot.http.get("/tokens").json()["items"][0]["id"]
    with anyio.fail_after(20):
        async with Client(server.http_url, bot.token) as client:
            with pytest.raises(Unauthorized):
                async with client.room(room).doc("notes") as notes:
                    assert notes.synced
                    r = await anyio.to_thread.run_sync(bot.http.delete, f"/tokens/{token_id}")
                    assert r.status_code == 204
                    await anyio.sleep_forever()  # the socket closes 4401: raised from here
    api.close()


async def test_an_expiring_room_token_is_replaced_through_the_callback(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    api = Api(server)
    owner, bot = api.dev, api.user("bot")
    room = api.room("r", owner=owner, **{bot.user_id: "editor"})
    minted: list[str] = []

    async def fresh_token() -> str:
        def mint() -> Any:
            return bot.http.post(f"/rooms/{room}/tokens", json={"ttl": 2}).json()

        found = await anyio.to_thread.run_sync(mint)
        minted.append(server.remember(found["token"]))
        return minted[-1]

    with anyio.fail_after(30):
        async with Client(server.http_url, token_source=fresh_token) as client:
            async with client.room(room).doc("notes") as notes:
                text = notes.doc.get("text", type=Text)
                await wait_until(lambda: notes.connections >= 3, 15)  # closed 4001 twice
                text.insert(0, "still here")
                await notes.saved()
            assert len(minted) >= 3
    async with provider(server.ws_url(room, "notes")) as (doc, _):
        assert str(doc.get("text", type=Text)) == "still here"
    api.close()


async def test_4409_reloads_the_doc_and_never_writes_the_old_state_back(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "editor"})
    async with provider(server.ws_url(room, "notes")) as (seed, _):
        seed.get("text", type=Text).insert(0, "generation one")
        await anyio.sleep(0.5)  # the scenario: the update reaches the server's log
    reloaded: list[object] = []
    with anyio.fail_after(40):
        async with Client(server.http_url, bot.token) as client:
            async with client.room(room).doc("notes") as notes:
                assert notes.generation is not None
                notes.on_reload.append(reloaded.append)
                assert str(notes.doc.get("text", type=Text)) == "generation one"
                # What `collab restore --rollback` does to a doc, done while the server is down.
                await anyio.to_thread.run_sync(server.terminate)
                db = sqlite3.connect(server.store.removeprefix("sqlite:///"))
                with db:
                    db.execute("DELETE FROM doc_updates WHERE room=? AND name='notes'", (room,))
                    db.execute(
                        "UPDATE docs SET generation='g2', snapshot=NULL"
                        " WHERE room=? AND name='notes'",
                        (room,),
                    )
                db.close()
                await anyio.to_thread.run_sync(server.start)
                await wait_until(lambda: notes.reloads == 1 and notes.synced, 20)
                assert reloaded == [notes.doc] and notes.generation == "g2"
                assert str(notes.doc.get("text", type=Text)) == ""
                notes.doc.get("text", type=Text).insert(0, "generation two")
                await notes.saved()
    async with provider(server.ws_url(room, "notes")) as (doc, _):
        assert str(doc.get("text", type=Text)) == "generation two"
    api.close()


async def test_presence_is_seen_both_ways_with_the_server_stamped_user(
    server: CollabServer,
) -> None:
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "editor"})
    async with Client(server.http_url, bot.token) as client:
        async with client.room(room).doc("notes") as notes:
            notes.presence.set({"status": "summarising", "user": {"name": "forged"}})
            async with JsPeer(server.ws_base, f"{room}/notes", {"token": server.dev_token}) as js:
                mine = notes.presence.client_id
                assert mine is not None
                found = await js.call({"op": "wait_states", "has": [mine]})
                state = found["states"][str(mine)]
                assert state["status"] == "summarising"
                assert state["user"]["id"] == bot.user_id and state["user"]["name"] == "bot"
                await js.call({"op": "awareness", "state": {"cursor": 3}})
                with anyio.fail_after(10):
                    while js.client_id not in notes.presence.others():
                        await notes.presence.wait_changed()
                assert notes.presence.others()[js.client_id]["cursor"] == 3
                notes.presence.update(status="idle")
                await js.call(
                    {
                        "op": "wait_states",
                        "has": [mine],
                        "state": {**state, "status": "idle"},
                    }
                )
    api.close()


async def test_rate_limits_are_waited_out_and_posts_stay_single(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(chat_write_rate=0.5, chat_write_burst=2)
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "commenter"})
    path = f"/rooms/{room}/messages"
    with anyio.fail_after(40):
        async with Client(server.http_url, bot.token) as client:
            chat = client.room(room)
            # A raw call (no retry) is told: 429, with how long to wait.
            for cid in ("x", "y"):
                await client.call("POST", path, json={"text": cid, "client_id": cid})
            with pytest.raises(RateLimited) as refused:
                await client.call("POST", path, json={"text": "z", "client_id": "z"})
            assert refused.value.retry_after >= 1
            # post() waits each 429 out, and a retried client_id posts once.
            posted = [await chat.post(f"m{i}", client_id=f"c{i}") for i in range(3)]
            assert [m.seq for m in posted] == [3, 4, 5]
            again = await chat.post("m0", client_id="c0")
            assert again.id == posted[0].id
    api.close()


async def test_leaving_a_doc_closes_its_socket_at_once(server: CollabServer) -> None:
    """The block's end cancels the connection task; the socket must still be closed before the
    block is left (a half-closed transport left to the garbage collector once surfaced as a
    ResourceWarning in a later test), and the others see the presence go at once."""
    api = Api(server)
    bot = api.user("bot")
    room = api.room("r", owner=api.dev, **{bot.user_id: "editor"})

    def open_to_server() -> set[int]:
        """The local ports of this process's sockets to the server that are not closed yet
        (a socket whose fd is closed is no longer the process's, whatever its TCP state)."""
        return {
            c.laddr.port
            for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == server.port
        }

    async with JsPeer(server.ws_base, f"{room}/notes", {"token": server.dev_token}) as js:
        async with Client(server.http_url, bot.token) as client:
            before = open_to_server()  # the API's keep-alive connection
            async with client.room(room).doc("notes") as notes:
                notes.presence.set({"status": "here"})
                mine = notes.presence.client_id
                assert mine is not None
                await js.call({"op": "wait_states", "has": [mine]})
                assert open_to_server() - before  # the doc's socket
            assert not open_to_server() - before  # closed before the block was left
            await js.call({"op": "wait_states", "lacks": [mine], "timeout_ms": 3000})
    api.close()
