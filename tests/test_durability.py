"""The durability promise, against a real server process: kill -9, SIGTERM, compaction."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from pathlib import Path

import anyio
import pytest

from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

TOKEN = re.compile(r"<(\d+)\.(\d+)>")


def tokens(text: str) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in TOKEN.findall(text)}


async def fresh_text(server: CollabServer, room: str = "dur", doc: str = "d") -> str:
    peer = await RawPeer.connect(server.ws_url(room, doc))
    try:
        return str(peer.text)
    finally:
        await peer.close()


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


async def write_burst(writer: RawPeer, round_: int, stop: asyncio.Event) -> None:
    """Append tokens ``<round.k>`` one update each, asking for a saved echo after every one."""
    k = 0
    while not stop.is_set():
        k += 1
        await writer.insert(len(writer.text), f"<{round_}.{k}>")
        await writer.request_saved(k)
        if k % 5 == 0:
            # A heavy but human-paced load (~2,000 updates/s): a client that floods without
            # ever yielding starves its own reader in this process, not the server.
            await asyncio.sleep(0.002)


async def test_kill9_under_write_load_loses_nothing_received_or_saved(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    # compact_rows small: compaction runs all the time, so some kills land inside one.
    server = server_factory(compact_rows=7, compact_bytes=4096)
    rng = random.Random(1234)
    must_survive: set[tuple[int, int]] = set()
    for round_ in range(20):
        with anyio.fail_after(30):
            writer = await RawPeer.connect(server.ws_url("dur", "d"))
            observer = await RawPeer.connect(server.ws_url("dur", "d"))
            stop = asyncio.Event()
            burst = asyncio.get_running_loop().create_task(write_burst(writer, round_, stop))
            # The scenario's timing: a joiner arrives mid-burst, and the kill lands at a random
            # moment of the load (inside a commit, a compaction, a sync answer...).
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            joiner = await RawPeer.connect(server.ws_url("dur", "d"))  # joins mid-burst
            await asyncio.sleep(rng.uniform(0.02, 0.2))
            server.kill9()
            stop.set()
            await asyncio.gather(burst, return_exceptions=True)
            received = tokens(str(observer.text)) | tokens(str(joiner.text))
            saved = {(round_, k) for k in range(1, writer.saved + 1)}
            must_survive |= received | saved
            for peer in (writer, observer, joiner):
                peer.abort()
            assert writer.saved > 0, "the burst never got a saved echo"
            assert integrity(tmp_path / "collab.db") == "ok"
            server.start()
            survived = tokens(await fresh_text(server))
            missing = must_survive - survived
            assert not missing, f"round {round_}: lost {sorted(missing)[:10]}"
    server.terminate()
    assert integrity(tmp_path / "collab.db") == "ok"


async def test_sigterm_mid_burst_closes_1012_flushes_and_exits_quickly(
    server: CollabServer,
) -> None:
    with anyio.fail_after(30):
        writer = await RawPeer.connect(server.ws_url("dur", "d"))
        observer = await RawPeer.connect(server.ws_url("dur", "d"))
        stop = asyncio.Event()
        burst = asyncio.get_running_loop().create_task(write_burst(writer, 0, stop))
        await observer.wait_for(lambda: len(tokens(str(observer.text))) > 50)
        started = time.monotonic()
        assert server.proc is not None
        server.proc.send_signal(15)
        await observer.closed.wait()
        stop.set()
        await asyncio.gather(burst, return_exceptions=True)
        code = await anyio.to_thread.run_sync(server.proc.wait, 15)
        elapsed = time.monotonic() - started
        assert observer.close_code == 1012
        assert code in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
        assert elapsed < 10, f"exit took {elapsed:.1f}s"
        received = tokens(str(observer.text))
        saved = {(0, k) for k in range(1, writer.saved + 1)}
        server.start()
        survived = tokens(await fresh_text(server))
        assert received - survived == set()
        assert saved - survived == set()


def stored_bytes(db: Path, room: str, doc: str) -> int:
    with sqlite3.connect(db) as conn:
        (snap,) = conn.execute(
            "SELECT coalesce(length(snapshot), 0) FROM docs WHERE room=? AND name=?", (room, doc)
        ).fetchone()
        (log,) = conn.execute(
            "SELECT coalesce(sum(length(data)), 0) FROM doc_updates WHERE room=? AND name=?",
            (room, doc),
        ).fetchone()
    return int(snap) + int(log)


async def test_type_and_delete_keeps_storage_within_twice_the_live_content(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    compact_bytes = 256 * 1024
    server = server_factory(compact_bytes=compact_bytes)
    db = tmp_path / "collab.db"
    chunk = "x" * 1000
    bound = 2 * compact_bytes + 64 * 1024  # after each compaction
    with anyio.fail_after(120):
        peer = await RawPeer.connect(server.ws_url("gc", "d"))
        for cycle in range(5):
            for _ in range(1000):  # 1 MB, one update per KB, as a fast typist's editor would
                await peer.insert(len(peer.text), chunk)
            await peer.request_saved(2 * cycle + 1)
            await peer.wait_for(lambda c=cycle: peer.saved == 2 * c + 1, 30)
            live = len(str(peer.text))
            assert stored_bytes(db, "gc", "d") <= 2 * max(live, compact_bytes)
            await peer.delete(0, len(peer.text))
            await peer.request_saved(2 * cycle + 2)
            await peer.wait_for(lambda c=cycle: peer.saved == 2 * c + 2, 30)
            # Compaction runs right after the commit that crossed its threshold, just after
            # the saved echo went out: wait for it.
            await wait_until(lambda: stored_bytes(db, "gc", "d") <= bound, 10, interval=0.05)
        await peer.close()
    assert await fresh_text(server, "gc", "d") == ""
