"""/metrics counts the live stream (``/ws/_me``) like any socket, against a real server: its
text frames are frames sent (``type="text"``), and its close for a frame it does not take is
not a rate refusal."""

from __future__ import annotations

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.metrics.test_metrics import ascrape, value, wait_metric
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio


async def test_stream_frames_are_counted_sent(server: CollabServer) -> None:
    user = server.create_user("Ada")
    token = server.api_token(user)
    _, before = await ascrape(server.http_url + "/metrics")
    with anyio.fail_after(30):
        async with connect(f"{server.ws_base}/_me?token={token}") as ws:
            frame = await ws.recv()
            assert isinstance(frame, str) and '"type":"rooms"' in frame
            after = await wait_metric(server, lambda s: value(s, "collab_connections") == 1)
    sent = value(after, "collab_messages_sent_total", type="text")
    assert sent == value(before, "collab_messages_sent_total", type="text") + 1
    nbytes = value(after, "collab_sent_bytes_total", type="text")
    assert nbytes - value(before, "collab_sent_bytes_total", type="text") == len(frame.encode())


async def test_a_frame_sent_to_the_stream_is_no_rate_refusal(server: CollabServer) -> None:
    user = server.create_user("Ada")
    token = server.api_token(user)
    _, before = await ascrape(server.http_url + "/metrics")
    with anyio.fail_after(30):
        async with connect(f"{server.ws_base}/_me?token={token}") as ws:
            await ws.recv()
            await ws.send("hello")
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            assert ws.close_code == 1008
        after = await wait_metric(
            server,
            lambda s: (
                value(s, "collab_connection_closes_total", code="1008")
                > value(before, "collab_connection_closes_total", code="1008")
            ),
        )
    rate = value(after, "collab_messages_refused_total", reason="rate")
    assert rate == value(before, "collab_messages_refused_total", reason="rate")
    unsupported = value(after, "collab_messages_refused_total", reason="unsupported")
    assert unsupported == value(before, "collab_messages_refused_total", reason="unsupported") + 1
