"""A socket whose access ends while it is still joining (its doc loading) does not outlive it:
the change reaches it once it has joined. The doc's load is held by a lock on the store's
``docs`` table (PostgreSQL), so the change lands exactly in that window."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import httpx
import psycopg
import pytest

from tests.api.conftest import Api
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio

ROOM = "r"


@contextmanager
def docs_locked(pg_url: str) -> Iterator[None]:
    """Every read of a doc from the store waits until the block ends."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("LOCK TABLE docs IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def waiting_on_a_lock(pg_url: str) -> bool:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
        return bool(row and row[0])


async def written_doc(server: CollabServer, token: str, doc: str) -> None:
    """``doc`` exists in the store, and is no longer loaded (its idle time is short)."""
    writer = await RawPeer.connect(server.ws_url(ROOM, doc, token=token))
    await writer.insert(0, "hello")
    await writer.request_saved(1)
    await writer.wait_for(lambda: writer.saved == 1)
    await writer.close()
    await anyio.sleep(1.0)  # room_idle_seconds=0.2: evicted


async def join_while(
    server: CollabServer, pg_url: str, url: str, change: Callable[[], httpx.Response]
) -> RawPeer:
    """Open ``url`` while its doc's load is held, make ``change``, then let the load go."""
    with docs_locked(pg_url):
        peer = await RawPeer.connect(url, sync=False)  # accepted; now loading the doc
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(pg_url):
            assert time.monotonic() < deadline, "the join never reached the store"
            await anyio.sleep(0.05)
        response = change()
        assert response.status_code == 204, response.text
    return peer


@pytest.mark.parametrize("how", ["member removed", "token revoked"])
async def test_access_ended_while_joining_closes_the_socket_once_joined(
    pg_url: str, server_factory: ServerFactory, how: str
) -> None:
    server = server_factory(store=pg_url, room_idle_seconds=0.2)
    api = Api(server)
    alice = api.user("alice")
    api.room(ROOM, api.dev, **{alice.user_id: "editor"})
    await written_doc(server, api.dev.token, "notes")
    if how == "member removed":
        url = server.ws_url(ROOM, "notes", token=alice.token)
        path = f"/rooms/{ROOM}/members/{alice.user_id}"
        peer = await join_while(server, pg_url, url, lambda: api.dev.http.delete(path))
        expected = 4403
    else:
        minted = alice.http.post(f"/rooms/{ROOM}/tokens", json={}).json()
        server.remember(minted["token"])
        url = server.ws_url(ROOM, "notes", token=minted["token"])
        path = f"/rooms/{ROOM}/tokens/{minted['id']}"
        peer = await join_while(server, pg_url, url, lambda: api.dev.http.delete(path))
        expected = 4401
    with anyio.move_on_after(5):
        await peer.closed.wait()
    if not peer.closed.is_set():
        await peer.insert(0, "after")
        await peer.request_saved(1)
        with anyio.move_on_after(5):
            await peer.wait_for(lambda: peer.saved == 1 or peer.closed.is_set())
        pytest.fail(f"the socket outlived its access ({how}); its edit saved: {peer.saved == 1}")
    assert peer.close_code == expected
    api.close()
