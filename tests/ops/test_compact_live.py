"""``collab compact`` under a live server (collab.ops.compact): a doc deleted through the
server while the command works on the docs before it is left alone, not a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import anyio
import httpx
import pytest

from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio

DOCS = 12  # each one a compaction child (an interpreter start): seconds in all


def _compacted(db: str, room: str, doc: str) -> bool:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT snapshot_seq FROM docs WHERE room=? AND name=?", (room, doc)
        ).fetchone()
    return row is not None and row[0] > 0


async def test_a_doc_deleted_while_compact_runs_is_skipped(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(compact_rows=100_000, room_idle_seconds=3600)
    db = str(server.workdir / "collab.db")
    headers = {"Authorization": f"Bearer {server.dev_token}"}
    with anyio.fail_after(120):
        async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers) as api:
            for room in ("aroom", "zroom"):
                assert (await api.post("/rooms", json={"id": room})).status_code == 201
            docs = [("aroom", f"d{n:02d}") for n in range(DOCS)] + [("zroom", "last")]
            for room, doc in docs:
                peer = await RawPeer.connect(server.ws_url(room, doc))
                for n in range(3):
                    await peer.insert(0, f"{doc} {n} ")
                await peer.request_saved(3)
                await peer.wait_for(lambda p=peer: p.saved == 3)
                await peer.close()
            command = [sys.executable, "-m", "collab", "compact", "--store", db]
            proc = await anyio.to_thread.run_sync(
                lambda: subprocess.Popen(
                    command, cwd=server.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            )
            try:
                # It listed the docs and works on the first ones: the last one goes now.
                while not _compacted(db, "aroom", "d00"):
                    assert proc.poll() is None, "compact ended before the delete"
                    await anyio.sleep(0.01)
                assert not _compacted(db, "aroom", f"d{DOCS - 1:02d}")
                assert (await api.delete("/rooms/zroom/docs/last")).status_code == 204
                started = time.monotonic()
                while proc.poll() is None and time.monotonic() - started < 100:
                    await anyio.sleep(0.1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                out, err = await anyio.to_thread.run_sync(proc.communicate)
    assert proc.returncode == 0, out.decode() + err.decode()
    assert f"compacted {DOCS} docs" in out.decode()
    assert "skipped zroom/last: deleted while compacting" in out.decode()
