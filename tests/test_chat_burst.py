"""A burst of posts into one room of a real server, killed with SIGKILL in the middle: no
answered post is lost, seqs stay gapless, and nothing a reader was sent is missing from the
table after the restart (the ``chat`` doc's update commits with its row, before any relay)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Map

from tests.api.conftest import Api
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory

pytestmark = pytest.mark.anyio

POSTS = 400


def in_doc(peer: RawPeer) -> dict[str, int]:
    """What a reader holds: message id -> seq."""
    messages: dict[str, Any] = peer.doc.get("messages", type=Map).to_py() or {}
    return {key: int(value["seq"]) for key, value in messages.items()}


def in_table(server: CollabServer, room: str) -> dict[str, int]:
    api = Api(server)
    found: dict[str, int] = {}
    after = 0
    while True:
        page = api.dev.http.get(
            f"/rooms/{room}/messages", params={"after_seq": after, "limit": 200}
        ).json()["items"]
        if not page:
            break
        found.update({m["id"]: m["seq"] for m in page})
        after = page[-1]["seq"]
    api.close()
    return found


async def test_kill9_mid_burst_loses_no_answered_post_and_no_reader_saw_a_lost_one(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(chat_write_rate=100_000, chat_write_burst=100_000)
    api = Api(server)
    room = api.room("r")
    token = api.dev.token
    api.close()
    reader = await RawPeer.connect(server.ws_url(room, "chat"))
    answered: dict[str, int] = {}
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=server.http_url + "/api/v1", headers=headers, timeout=10, limits=limits
    ) as client:

        async def post(n: int) -> None:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post(
                    f"/rooms/{room}/messages", json={"text": f"burst {n}", "client_id": f"c{n}"}
                )
                if r.status_code in (200, 201):
                    answered[r.json()["id"]] = r.json()["seq"]

        posts = [asyncio.ensure_future(post(n)) for n in range(POSTS)]
        with anyio.fail_after(60):
            while len(answered) < 50:
                await asyncio.sleep(0.002)
        server.kill9()
        with anyio.fail_after(60):
            await asyncio.gather(*posts)
    with anyio.fail_after(10):
        await reader.closed.wait()
    seen = in_doc(reader)
    assert 50 <= len(answered) < POSTS, "the kill came after the burst: nothing was tested"

    server.start()
    stored = in_table(server, room)
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # gapless
    assert answered.items() <= stored.items()  # every answered post, with its seq
    assert seen.items() <= stored.items()  # nothing relayed that the crash took back
    fresh = await RawPeer.connect(server.ws_url(room, "chat"))
    try:
        assert in_doc(fresh) == stored  # the doc equals the table: no duplicate, no phantom
    finally:
        await fresh.close()
