"""Uploads stream (issue 12, Done means 1): a 50 MiB upload barely moves the server's memory
and comes back byte for byte; a 101 MiB one is refused with 413 while it streams in and leaves
nothing on disk; a client that goes away mid-upload leaves nothing either. Raw HTTP/1.1 where
the framing matters (chunked: the server cannot know the size before the bytes)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import psutil
import pytest

from collab.store.bloblock import lock_file
from tests.support.server import CollabServer
from tests.support.waiting import wait_until
from tests.test_body_limit import chunk, read_response

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
BOUNDARY = b"collab-test-boundary"
PART_HEAD = (
    b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
PART_TAIL = b"\r\n--" + BOUNDARY + b"--\r\n"


def block(i: int) -> bytes:
    """1 MiB of bytes that differ per block (a dedup or a compressor would notice)."""
    return hashlib.sha256(str(i).encode()).digest() * (MB // 32)


def files_on_disk(server: CollabServer) -> list[Path]:
    """The uploads' files, whole or under way (not the backup lock, no upload's)."""
    root = server.workdir / "files"
    return [p for p in root.rglob("*") if p.is_file() and p != lock_file(root)]


async def make_room(server: CollabServer, room: str) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        r = await http.post(
            "/api/v1/rooms",
            json={"id": room, "title": room},
            headers={"authorization": f"Bearer {server.dev_token}"},
        )
        assert r.status_code == 201, r.text


def request_head(server: CollabServer, room: str, framing: str) -> bytes:
    return (
        f"POST /api/v1/rooms/{room}/files HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.dev_token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY.decode()}\r\n{framing}\r\n\r\n"
    ).encode()


async def test_a_50_mib_upload_streams_and_comes_back_whole(server: CollabServer) -> None:
    await make_room(server, "r")
    proc = psutil.Process(server.pid)
    auth = {"authorization": f"Bearer {server.dev_token}"}
    async with httpx.AsyncClient(base_url=server.http_url, headers=auth, timeout=60) as http:
        for _ in range(3):  # warm the path up (first requests, threads, caches)
            r = await http.post("/api/v1/rooms/r/files", files={"file": ("w", b"warm")})
            assert r.status_code == 201
        baseline = peak = proc.memory_info().rss
        done = anyio.Event()
        digest = hashlib.sha256()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                await anyio.sleep(0.005)

        async def body() -> AsyncIterator[bytes]:
            yield PART_HEAD
            for i in range(50):
                data = block(i)
                digest.update(data)
                yield data
            yield PART_TAIL

        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY.decode()}"}
        started = time.monotonic()
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(sample)
                r = await http.post("/api/v1/rooms/r/files", content=body(), headers=headers)
                done.set()
        seconds = time.monotonic() - started
        assert r.status_code == 201, r.text
        found = r.json()
        growth = peak - baseline
        print(
            f"\n50 MiB upload: RSS {baseline / MB:.0f} MiB -> peak +{growth / MB:.1f} MiB, "
            f"{seconds:.2f}s"
        )
        assert growth < 30 * MB, f"server RSS grew {growth / MB:.0f} MiB"
        assert found["size"] == 50 * MB and found["sha256"] == digest.hexdigest()
        check = hashlib.sha256()
        size = 0
        async with http.stream("GET", f"/api/v1/rooms/r/files/{found['id']}") as got:
            assert got.status_code == 200
            async for data in got.aiter_bytes():
                check.update(data)
                size += len(data)
        assert size == 50 * MB and check.hexdigest() == found["sha256"]


async def test_101_mib_is_refused_while_streaming_and_leaves_nothing(
    server: CollabServer,
) -> None:
    """Chunked, so the size is unknown until the bytes arrive: 413 once past the default
    max_upload_size (100 MiB), the rest never read, the partial file removed."""
    await make_room(server, "r")
    sent = 0
    answer: tuple[int, dict[str, str], bytes] | None = None
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:

        async def send() -> None:
            nonlocal sent
            await stream.send(request_head(server, "r", "Transfer-Encoding: chunked"))
            await stream.send(chunk(PART_HEAD))
            try:
                for i in range(101):
                    await stream.send(chunk(block(i)))
                    sent += MB
                await stream.send(chunk(PART_TAIL) + b"0\r\n\r\n")
            except (anyio.BrokenResourceError, OSError):
                pass  # answered and closed: the rest is never read

        async def receive() -> None:
            nonlocal answer
            answer = await read_response(stream)

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                tg.start_soon(receive)
    assert answer is not None
    status, headers, body = answer
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "too_large"
    assert sent >= 99 * MB  # it was refused at the cap, not before
    assert files_on_disk(server) == []  # no blob, no temporary file
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    assert 'collab_file_uploads_refused_total{reason="too_large"} 1.0' in metrics
    assert 'collab_quota_refusals_total{quota="upload_size"} 1.0' in metrics


async def test_a_declared_length_past_the_cap_is_refused_before_any_byte(
    server: CollabServer,
) -> None:
    await make_room(server, "r")
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request_head(server, "r", f"Content-Length: {101 * MB}"))
        status, headers, body = await read_response(stream)
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert headers["connection"] == "close"
    assert files_on_disk(server) == []


async def test_a_client_gone_mid_upload_leaves_nothing(server: CollabServer) -> None:
    await make_room(server, "r")
    tmp = server.workdir / "files" / "tmp"
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request_head(server, "r", f"Content-Length: {20 * MB}"))
        await stream.send(PART_HEAD)
        for i in range(5):
            await stream.send(block(i))
        await wait_until(lambda: any(tmp.iterdir()), what="the upload under way")
    await wait_until(lambda: not any(tmp.iterdir()), what=lambda: list(tmp.iterdir()))
    assert files_on_disk(server) == []
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200
