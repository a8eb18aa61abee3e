"""Request bodies are read as they stream in and refused at the cap (413), whatever the framing.

Issue 8 item 3: ``read_json`` trusted Content-Length only, so a chunked body (no length) was read
whole before its size was checked; a 400 MiB chunked POST took the server from 61 to 429 MiB.
Each test speaks raw HTTP/1.1 to a real server, so the framing is exactly what it says.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import psutil
import pytest
from anyio.abc import SocketStream

from collab.api.parsing import MAX_BODY
from tests.support.server import CollabServer

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
PATH = "/api/v1/rooms"  # POST: creates a room from a small JSON body (read_json)


def head(server: CollabServer, framing: str) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.dev_token}\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_response(stream: SocketStream) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of one response; the server closes after it."""
    data = b""
    with anyio.fail_after(10):
        while True:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {name: value for name, _, value in (ln.lower().partition(": ") for ln in lines)}
    return int(status_line.split()[1]), headers, body


async def test_chunked_body_past_the_cap_is_413_without_reading_the_rest(
    server: CollabServer,
) -> None:
    """A chunked body larger than the cap, whose end never comes: answered 413 as soon as the
    cap is passed (before, the server waited for the whole body), and the connection closes."""
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(head(server, "Transfer-Encoding: chunked"))
        await stream.send(chunk(b" " * (MAX_BODY + 1024)))  # and no terminating chunk
        status, headers, body = await read_response(stream)
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_too_large"


async def test_declared_length_past_the_cap_is_413_before_any_byte(server: CollabServer) -> None:
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(head(server, f"Content-Length: {400 * MB}"))
        status, _, body = await read_response(stream)
    assert status == 413 and json.loads(body)["error"]["code"] == "body_too_large"


async def test_bodies_up_to_the_cap_still_work_chunked_or_not(server: CollabServer) -> None:
    padding = "x" * (MAX_BODY - 200)  # an ignored field: the body is just under the cap
    base = {"authorization": f"Bearer {server.dev_token}"}

    async with httpx.AsyncClient(base_url=server.http_url, headers=base, timeout=10) as http:
        sized = await http.post(PATH, json={"id": "sized", "title": "t", "pad": padding})
        assert sized.status_code == 201, sized.text
        payload = json.dumps({"id": "chunked", "title": "t", "pad": padding}).encode()

        async def agen() -> AsyncIterator[bytes]:
            for i in range(0, len(payload), 4096):
                yield payload[i : i + 4096]

        chunked = await http.post(PATH, content=agen())  # a generator: sent chunked
        assert chunked.request.headers.get("transfer-encoding") == "chunked"
        assert chunked.status_code == 201, chunked.text
        over = await http.post(PATH, content=b" " * (MAX_BODY + 1))
        assert over.status_code == 413


async def test_400_mib_chunked_post_does_not_grow_the_server(server: CollabServer) -> None:
    """The issue's repro: 400 MiB, chunked, as fast as the server takes it. The server's RSS is
    sampled throughout; it stops reading at the cap, so the sender cannot push the rest."""
    proc = psutil.Process(server.pid)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        for _ in range(3):  # warm up the request path (imports, caches)
            await http.post(PATH, headers={"authorization": f"Bearer {server.dev_token}"})
    baseline = peak = proc.memory_info().rss
    sent = 0
    done = anyio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            await anyio.sleep(0.005)

    async def flood() -> None:
        nonlocal sent
        block = chunk(b"[" * MB)
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            await stream.send(head(server, "Transfer-Encoding: chunked"))
            try:
                while sent < 400 * MB:
                    await stream.send(block)
                    sent += MB
                await stream.send(b"0\r\n\r\n")
            except (anyio.BrokenResourceError, OSError):
                pass  # the server answered 413 and closed: the rest is never read
        done.set()

    started = time.monotonic()
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            tg.start_soon(flood)
    growth = peak - baseline
    print(
        f"\n400 MiB chunked POST: sent {sent / MB:.0f} MiB before the server closed, "
        f"RSS {baseline / MB:.0f} MiB -> peak +{growth / MB:.1f} MiB, "
        f"{time.monotonic() - started:.2f}s"
    )
    assert growth < 32 * MB, f"server RSS grew {growth / MB:.0f} MiB"
    assert sent < 100 * MB, f"the server kept reading: {sent / MB:.0f} MiB accepted"
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200
