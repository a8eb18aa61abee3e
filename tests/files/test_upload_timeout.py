"""A trickled request body is bounded in time: an upload (or an API body) that goes
``body_timeout`` seconds without a byte is refused with 408 ``body_timeout`` and its connection
closed, the upload's temporary file removed, while other clients carry on. Raw HTTP/1.1 over a
socket that drips the body slower than the bound allows."""

from __future__ import annotations

import json
import time

import anyio
import httpx
import pytest
from anyio.abc import SocketStream

from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until
from tests.test_body_limit import read_response
from tests.test_files_streaming import PART_HEAD, files_on_disk, make_room, request_head

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0  # body_timeout of the server under test
DRIP = 2.5  # seconds between the bytes the slow client sends: more than TIMEOUT


async def drip(stream: SocketStream, data: bytes) -> None:
    """Send ``data`` a byte every ``DRIP`` seconds (the scenario: a slowloris body), until the
    server closes the connection."""
    for byte in data:
        try:
            await stream.send(bytes([byte]))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        await anyio.sleep(DRIP)  # the pace itself is the attack


async def answered_meanwhile(server: CollabServer, room: str) -> None:
    """Another client's requests and upload, while the slow one is held."""
    auth = {"authorization": f"Bearer {server.dev_token}"}
    async with httpx.AsyncClient(base_url=server.http_url, headers=auth, timeout=10) as http:
        r = await http.post(f"/api/v1/rooms/{room}/files", files={"file": ("ok.txt", b"fine")})
        assert r.status_code == 201, r.text
        assert (await http.get(f"/api/v1/rooms/{room}/files")).status_code == 200


async def test_a_trickled_upload_is_refused_408_and_its_temp_file_removed(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(body_timeout=TIMEOUT)
    await make_room(server, "r")
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        # Declared large, so nothing refuses it up front; the part's head and a first byte of
        # its content arrive at once (the temporary file exists), then a byte every DRIP s.
        await stream.send(request_head(server, "r", "Content-Length: 1000000") + PART_HEAD + b"x")
        await wait_until(lambda: files_on_disk(server), what="the upload's temporary file")
        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drip, stream, b"y" * 100)
            await answered_meanwhile(server, "r")
            with anyio.fail_after(10 * TIMEOUT + 2 * DRIP):  # generous: closed within the bound
                status, headers, body = await read_response(stream)
            tasks.cancel_scope.cancel()
        elapsed = time.monotonic() - started
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_timeout"
    assert elapsed < 10 * TIMEOUT + 2 * DRIP
    # Only the other client's file stays: the slow one's partial file is gone.
    await wait_until(lambda: len(files_on_disk(server)) == 1, what=lambda: files_on_disk(server))
    stored = [p.relative_to(server.workdir / "files").parts[0] for p in files_on_disk(server)]
    assert "tmp" not in stored


async def test_a_trickled_json_body_is_refused_408(server_factory: ServerFactory) -> None:
    server = server_factory(body_timeout=TIMEOUT)
    head = (
        f"POST /api/v1/rooms HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.dev_token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(head + b'{"id": ')
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drip, stream, b'"slow", "title": "s"}')
            with anyio.fail_after(10 * TIMEOUT + 2 * DRIP):
                status, headers, body = await read_response(stream)
            tasks.cancel_scope.cancel()
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "body_timeout"
    # The bound is per read: a body whose bytes keep coming within it is taken, however long
    # it takes in total (here 3 x body_timeout).
    body = b'{"id": "steady"}'
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        framing = b"Connection: close\r\nContent-Length: %d" % len(body)  # closed after it
        await stream.send(head.replace(b"Content-Length: 100", framing))
        for piece in (body[:4], body[4:8], body[8:12], body[12:]):
            await anyio.sleep(3 * TIMEOUT / 4)  # the pace: slow, but never idle for the bound
            await stream.send(piece)
        status, _, answer = await read_response(stream)
    assert status == 201, answer
