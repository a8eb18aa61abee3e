"""Bursts, connection churn and slow consumers against a real server process."""

from __future__ import annotations

import asyncio
import time

import anyio
import psutil
import pytest
from pycrdt import Doc, Text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab.wire import framing
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


async def test_edit_and_disconnect_burst_loses_nothing(server: CollabServer) -> None:
    async def edit_and_leave(i: int) -> None:
        doc: Doc[Text] = Doc()
        text = doc.get("text", type=Text)
        text += f"<{i}>"
        async with connect(server.ws_url("burst", "d")) as ws:
            await ws.send(framing.sync_update(doc.get_update()))
        # closed at once, without waiting for anything

    with anyio.fail_after(20):
        await asyncio.gather(*(edit_and_leave(i) for i in range(20)))
        peer = await RawPeer.connect(server.ws_url("burst", "d"))
        await peer.wait_for(lambda: all(f"<{i}>" in str(peer.text) for i in range(20)))
        await peer.close()
    assert "Traceback" not in server.log()


async def test_connect_disconnect_cycles_return_files_and_memory(
    server_factory: ServerFactory,
) -> None:
    # One address opening 1,100 sockets quickly: lift the handshake rate limit for this test.
    server = server_factory(handshake_rate=10_000, handshake_burst=10_000)
    proc = psutil.Process(server.pid)

    async def cycles(n: int) -> None:
        for i in range(n):
            peer = await RawPeer.connect(server.ws_url("churn", f"d{i % 7}"))
            await peer.close()

    def server_closed(n: int) -> bool:
        """The server has finished with ``n`` sockets (one "socket closed" line each)."""
        return server.log().count("socket closed") >= n

    with anyio.fail_after(120):
        await cycles(100)  # warm up: imports, allocator pools, loaded docs
        await wait_until(lambda: server_closed(100), 10, interval=0.05)
        fds, rss = proc.num_fds(), proc.memory_info().rss
        await cycles(1000)
        await wait_until(lambda: server_closed(1100), 10, interval=0.05)
    assert proc.num_fds() <= fds + 2
    growth = proc.memory_info().rss - rss
    assert growth < 10 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB over 1,000 cycles"


async def test_slow_consumer_is_closed_1013_without_hurting_others(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(outbound_queue_bytes=2 * 1024 * 1024)
    proc = psutil.Process(server.pid)
    url = server.ws_url("slow", "d")
    with anyio.fail_after(120):
        # A consumer that never reads: its client buffers one frame, then TCP fills up.
        slow = await connect(url, max_size=None, max_queue=1)
        await slow.send(framing.sync_step1(b"\x00"))
        writer = await RawPeer.connect(url)
        ping_a = await RawPeer.connect(server.ws_url("other", "d"))
        ping_b = await RawPeer.connect(server.ws_url("other", "d"))
        rss_before = proc.memory_info().rss
        worst = 0.0
        chunk = "y" * 100_000
        for i in range(300):  # 30 MB through the room; the doc itself stays small
            await writer.insert(0, chunk)
            await writer.delete(0, len(chunk))
            if i % 10 == 0:
                started = time.monotonic()
                await ping_a.insert(0, "p")
                await ping_b.wait_for(lambda n=i // 10 + 1: len(str(ping_b.text)) >= n, 5)
                worst = max(worst, time.monotonic() - started)
        rss_growth = proc.memory_info().rss - rss_before
        code = None
        try:
            while True:
                await slow.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
    assert code == 1013
    assert worst < 1.0, f"round trip in another room took {worst:.2f}s"
    assert rss_growth < 40 * 1024 * 1024, f"server RSS grew {rss_growth / 1e6:.0f} MB"
    for peer in (writer, ping_a, ping_b):
        await peer.close()


async def test_doc_over_max_size_closes_the_writer_4413_and_keeps_the_doc(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_doc_size=64 * 1024)
    with anyio.fail_after(20):
        writer = await RawPeer.connect(server.ws_url("big", "d"))
        reader = await RawPeer.connect(server.ws_url("big", "d"))
        await writer.insert(0, "a" * 30_000)
        await reader.wait_for(lambda: len(str(reader.text)) == 30_000)
        await writer.insert(0, "b" * 40_000)
        await writer.closed.wait()
        assert writer.close_code == 4413
        assert reader.close_code is None
        fresh = await RawPeer.connect(server.ws_url("big", "d"))
        assert str(fresh.text) == "a" * 30_000
        for peer in (reader, fresh):
            await peer.close()
