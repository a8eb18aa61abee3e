"""The search index's life outside a request (issue 13): restarts, a crash, a lost index file,
``collab search reindex`` (also under a running server, and on PostgreSQL), and backup /
verify / restore."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from pycrdt import Doc, Text

from tests.support.cli import collab
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


class Client:
    def __init__(self, server: CollabServer) -> None:
        self.server = server

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.http_url + "/api/v1",
            headers={"authorization": f"Bearer {self.server.dev_token}"},
            timeout=10,
        )

    def post(self, room: str, text: str, cid: str) -> str:
        with self.http() as http:
            http.post("/rooms", json={"id": room})  # 201, or 409 once it exists
            r = http.post(f"/rooms/{room}/messages", json={"text": text, "client_id": cid})
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

    def find(self, q: str) -> list[str]:
        with self.http() as http:
            r = http.get("/search", params={"q": q})
            assert r.status_code == 200, r.text
            return [i["message"] or i["doc"] for i in r.json()["items"]]

    async def write_doc(self, room: str, name: str, text: str) -> None:
        doc: Doc[Any] = Doc()
        doc["text"] = Text(text)
        with anyio.fail_after(10):
            peer = await RawPeer.connect(self.server.ws_url(room, name), doc=doc)
            await peer.request_saved(1)
            await peer.wait_for(lambda: peer.saved >= 1)
            await peer.close()

    async def until(self, q: str, expected: list[str]) -> None:
        await wait_until(lambda: self.find(q) == expected, what=lambda: self.find(q))


def index_file(server: CollabServer) -> Path:
    return server.workdir / "collab.db.search.db"


async def test_restarts_a_crash_and_a_lost_index(server_factory: ServerFactory) -> None:
    server = server_factory(search_index_delay=0.05)
    client = Client(server)
    first = client.post("r", "离线消息推送 before the restart", "c1")
    await client.write_doc("r", "notes", "notes about 消息推送")
    await client.until("消息推送", ["notes", first])
    assert "building the search index" in server.log()  # a new one, at the first start
    seen = len(server.log())
    server.restart()  # SIGTERM: closed cleanly, nothing to rebuild
    assert client.find("消息推送") == ["notes", first]
    assert "search index" not in server.log()[seen:]

    second = client.post("r", "posted just before the crash", "c2")
    server.kill9()
    # The crash lost the index's last writes (the messages table has the row, the index not).
    conn = sqlite3.connect(index_file(server))
    conn.execute("DELETE FROM entries WHERE key=?", (second,))
    conn.commit()
    conn.close()
    server.start()  # not closed cleanly: rebuilt in the background
    await client.until("crash", [second])
    assert "was not closed cleanly: rebuilding" in server.log()[seen:]

    server.terminate()
    for suffix in ("", "-wal", "-shm"):
        index_file(server).with_name(index_file(server).name + suffix).unlink(missing_ok=True)
    seen = len(server.log())
    server.start()  # no index at all: built from the tables and the stored docs
    await client.until("消息推送", ["notes", first])
    assert client.find("crash") == [second]
    assert "building the search index" in server.log()[seen:]


async def test_reindex_backup_verify_restore(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(search_index_delay=0.05)
    client = Client(server)
    message = client.post("r", "the quarterly 报告 is due", "c1")
    await client.write_doc("r", "plan", "quarterly plan")
    await client.until("quarterly", ["plan", message])
    store = ["--store", server.store]

    live = collab("search", "reindex", *store, cwd=tmp_path)  # while the server runs
    assert live.returncode == 0, live.stderr
    assert "1 rooms, 1 messages, 1 docs indexed" in live.stdout
    assert client.find("quarterly") == ["plan", message]
    refused = collab("search", "reindex", "--fresh", *store, cwd=tmp_path)
    assert refused.returncode == 1 and "running collab server" in refused.stderr

    backup_dir = tmp_path / "backup"
    made = collab("backup", str(backup_dir), *store, cwd=tmp_path)
    assert made.returncode == 0 and "search index" in made.stdout, made.stderr
    assert (backup_dir / "collab.db.search.db").stat().st_mode & 0o777 == 0o600
    checked = collab("verify", str(backup_dir), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "search index: integrity ok, 1 messages, 1 docs" in checked.stdout

    # A loose copy whose full-text index no longer matches its entries: exit 3.
    loose = tmp_path / "loose.db"
    shutil.copy(backup_dir / "collab.db", loose)
    broken = tmp_path / "loose.db.search.db"
    shutil.copy(backup_dir / "collab.db.search.db", broken)
    conn = sqlite3.connect(broken)
    conn.executescript("DROP TRIGGER entries_ad; DELETE FROM entries;")
    conn.close()
    bad = collab("verify", str(loose), cwd=tmp_path)
    assert bad.returncode == 3 and "BAD search index" in bad.stdout, bad.stdout
    broken.unlink()
    missing = collab("verify", str(loose), cwd=tmp_path)
    assert missing.returncode == 0 and "no search index" in missing.stdout

    server.terminate()
    fresh = collab("search", "reindex", "--fresh", *store, cwd=tmp_path)
    assert fresh.returncode == 0 and "1 messages, 1 docs" in fresh.stdout, fresh.stderr
    elsewhere = tmp_path / "restored" / "collab.db"
    elsewhere.parent.mkdir()
    restored = collab("restore", str(backup_dir), "--store", str(elsewhere), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert (elsewhere.parent / "collab.db.search.db").is_file()
    again = CollabServer(elsewhere.parent, store=f"sqlite:///{elsewhere}")
    again.start()
    try:
        assert Client(again).find("quarterly") == ["plan", message]
    finally:
        again.stop()


async def test_reindex_on_postgresql(
    pg_url: str, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The index in a PostgreSQL store's tables: emptied behind the server's back, `collab
    search reindex` fills it again while the server runs; `--fresh` waits for no node; `collab
    verify` counts it against the database."""
    server = server_factory(store=pg_url, secret_key="k" * 43, search_index_delay=0.05)
    client = Client(server)
    message = client.post("r", "the quarterly 报告 is due", "c1")
    await client.write_doc("r", "plan", "quarterly plan")
    await client.until("quarterly", ["plan", message])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM search_entries")
    assert client.find("quarterly") == []
    store = ["--store", pg_url]
    live = collab("search", "reindex", *store, cwd=tmp_path)  # while the server runs
    assert live.returncode == 0, live.stderr
    assert "1 rooms, 1 messages, 1 docs indexed" in live.stdout
    assert client.find("quarterly") == ["plan", message]
    refused = collab("search", "reindex", "--fresh", *store, cwd=tmp_path)
    assert refused.returncode == 1 and "1 running collab process" in refused.stderr

    server.terminate()
    fresh = collab("search", "reindex", "--fresh", *store, cwd=tmp_path)
    assert fresh.returncode == 0 and "1 messages, 1 docs" in fresh.stdout, fresh.stderr
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM search_entries").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM search_writers").fetchone() == (0,)
    checked = collab("verify", *store, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "search index: 1 messages, 1 docs, 0 tombstones" in checked.stdout
    assert "warning: the search index" not in checked.stdout
