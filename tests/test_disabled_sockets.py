"""`collab user disable`, run as its own process against a running server's database, closes
every socket the user holds (docs, chat, the live stream; every room) with 4401, as a revoked
credential is closed: the server notices on its periodic recheck (``collab.sync.disabled``).
Other users' sockets stay; `collab user enable` lets the user back in."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from collab.meta import MetaStore
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio

INTERVAL = 0.5  # user_recheck_interval: the bound below is many times this


def cli(server: CollabServer, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "collab", *args, "--store", server.store],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def member(server: CollabServer, name: str, *rooms: str) -> str:
    """A user who is an editor of ``rooms``; their id."""
    for room in rooms:
        server.mint_token(name, room)  # makes the user, the room and the membership

    async def find(meta: MetaStore) -> str:
        return next(u.id for u in await meta.list_users() if u.subject == name)

    return server.with_meta(find)


async def held_open(ws: ClientConnection) -> int | None:
    """Read the live stream until the server closes it; its close code."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass
    return ws.close_code


async def test_cli_disable_closes_every_socket_of_the_user_within_the_recheck(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(user_recheck_interval=INTERVAL)
    alice = member(server, "alice", "one", "two")
    bob = member(server, "bob", "one")
    alice_token, bob_token = server.api_token(alice), server.api_token(bob)
    session = server.session(alice)
    cookie = {"Cookie": f"collab_session={session}", "Origin": server.http_url}
    with anyio.fail_after(60):
        alices = [
            await RawPeer.connect(server.ws_url("one", "d", token=alice_token)),
            await RawPeer.connect(server.ws_url("two", "d", token=alice_token)),
            # Her chat, by the session cookie `user disable` revokes: the socket outlived it.
            await RawPeer.connect(
                server.ws_url("one", "chat", token=""), additional_headers=cookie
            ),
        ]
        feed_ws = await connect(f"{server.ws_base}/_me?token={alice_token}", open_timeout=10)
        feed = asyncio.ensure_future(held_open(feed_ws))
        bobs = await RawPeer.connect(server.ws_url("one", "d", token=bob_token))
        await bobs.insert(0, "bob was here")

        out = cli(server, "user", "disable", alice)
        assert "disabled" in out and "1 session(s) revoked" in out
        with anyio.fail_after(10 + 10 * INTERVAL):  # generous: one recheck closes them all
            for peer in alices:
                await peer.closed.wait()
            assert await feed == 4401
        assert [peer.close_code for peer in alices] == [4401, 4401, 4401]
        # bob's socket was left alone: it still edits and is told it is saved.
        assert not bobs.closed.is_set()
        await bobs.insert(0, "still ")
        await bobs.request_saved(1)
        await bobs.wait_for(lambda: bobs.saved == 1)
        assert not bobs.closed.is_set()
        # A new socket of hers is refused at once; enabled again, she is back.
        refused = await RawPeer.connect(server.ws_url("one", "d", token=alice_token), sync=False)
        await refused.closed.wait()
        assert refused.close_code == 4401
        cli(server, "user", "enable", alice)
        back = await RawPeer.connect(server.ws_url("one", "d", token=alice_token))
        assert str(back.text) == "still bob was here"
        await back.close()
        await bobs.close()
    assert "closed 4 sockets of 1 disabled users" in server.log()
