"""Operations commands against real servers: backup under write load, restore elsewhere,
restore --rollback with generations (4409), verify on a hostile deep doc, compact, stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Map, Text

from collab.wire import Limits, framing, scan_state_vector
from tests.support.cli import collab
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until
from tests.support.ybytes import MAP_TYPE, id_parent_item, root_item, update

pytestmark = pytest.mark.anyio


async def acollab(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collab",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def stored_doc(db: Path, room: str, name: str) -> Doc[Any]:
    """The doc as a database holds it (pycrdt in the test process is fine)."""
    conn = sqlite3.connect(db)
    try:
        snapshot, snapshot_seq = conn.execute(
            "SELECT snapshot, snapshot_seq FROM docs WHERE room=? AND name=?", (room, name)
        ).fetchone()
        rows = conn.execute(
            "SELECT data FROM doc_updates WHERE room=? AND name=? AND seq>? ORDER BY seq",
            (room, name, snapshot_seq),
        ).fetchall()
    finally:
        conn.close()
    doc: Doc[Any] = Doc()
    doc.get("text", type=Text)
    if snapshot:
        doc.apply_update(snapshot)
    for (data,) in rows:
        doc.apply_update(data)
    return doc


def generation(server: CollabServer, room: str, doc: str) -> str:
    r = httpx.get(
        f"{server.http_url}/api/v1/rooms/{room}/docs",
        headers={"authorization": f"Bearer {server.dev_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str({d["name"]: d for d in r.json()["items"]}[doc]["generation"])


async def write(server: CollabServer, room: str, doc: str, text: str) -> RawPeer:
    peer = await RawPeer.connect(server.ws_url(room, doc))
    await peer.insert(len(str(peer.text)), text)
    await peer.request_saved(1)
    await peer.wait_for(lambda: peer.saved == 1)
    return peer


def kept_aside(directory: Path) -> list[Path]:
    return list(directory.glob("collab.db.pre-restore-*.bak"))


def state(doc: Doc[Any]) -> dict[int, int]:
    return scan_state_vector(doc.get_state(), Limits())


async def test_backup_under_write_load_then_restore_elsewhere(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server: CollabServer = server_factory()
    db = tmp_path / "collab.db"
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        peer = await RawPeer.connect(server.ws_url("ops", "busy"))
        try:
            while not stop.is_set():
                await peer.insert(len(str(peer.text)), f"{written},")
                written += 1
                await asyncio.sleep(0.002)  # pacing: a fast typist, writing all through the backup
            await peer.request_saved(1)
            await peer.wait_for(lambda: peer.saved == 1)
        finally:
            await peer.close()

    with anyio.fail_after(90):
        await (await write(server, "ops", "static", "unchanged text")).close()
        task = asyncio.get_running_loop().create_task(writer())
        await wait_until(lambda: written >= 50)
        before = written
        code, out = await acollab("backup", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path)
        during = written - before
        after = written
        await wait_until(lambda: written >= after + 20)  # writes after the backup, too
        stop.set()
        await task
    assert code == 0, out
    assert during > 0, "the writer made no progress while the backup ran"
    backup_dir = tmp_path / "bk"
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["counts"]["docs"] == 2 and "secret_key" in manifest["files"]
    assert (backup_dir / "secret_key").read_text() == (tmp_path / "secret_key").read_text()

    snap = stored_doc(backup_dir / "collab.db", "ops", "busy")
    snap_text = str(snap.get("text", type=Text))
    live_text = str(stored_doc(db, "ops", "busy").get("text", type=Text))
    assert snap_text and live_text.startswith(snap_text) and len(live_text) > len(snap_text)

    verify = collab("verify", str(backup_dir), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "checked 2 docs: 0 bad" in verify.stdout

    # Restore elsewhere and serve it: every doc is what the backup holds.
    other = tmp_path / "elsewhere"
    restored = collab("restore", str(backup_dir), "--store", str(other / "collab.db"), cwd=tmp_path)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (other / "secret_key").read_text() == (backup_dir / "secret_key").read_text()
    second = CollabServer(other, store=f"sqlite:///{other / 'collab.db'}")
    try:
        second.start()
        with anyio.fail_after(30):
            for name, expected in (("busy", snap), ("static", None)):
                peer = await RawPeer.connect(second.ws_url("ops", name))
                if expected is None:
                    assert str(peer.text) == "unchanged text"
                else:
                    assert str(peer.text) == snap_text
                    assert state(peer.doc) == state(expected)
                await peer.close()
    finally:
        second.stop()


async def test_restore_refuses_a_live_database(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server: CollabServer = server_factory()
    with anyio.fail_after(20):
        await (await write(server, "ops", "d", "x")).close()
    db = tmp_path / "collab.db"
    assert collab("backup", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path).returncode == 0
    refused = collab("restore", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path)
    assert refused.returncode == 1
    assert "in use by a running collab server" in refused.stderr
    assert not kept_aside(tmp_path)
    server.terminate()
    done = collab("restore", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert kept_aside(tmp_path)


async def test_rollback_renews_generations_and_old_tabs_reload(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server: CollabServer = server_factory()
    db = tmp_path / "collab.db"
    with anyio.fail_after(30):
        tab = await write(server, "ops", "notes", "hello")
        old_gen = generation(server, "ops", "notes")
        assert (
            collab("backup", str(tmp_path / "bk"), "--store", str(db), cwd=tmp_path).returncode == 0
        )
        await tab.insert(5, " world")  # newer than the backup: to be rolled back
        await tab.request_saved(2)
        await tab.wait_for(lambda: tab.saved == 2)
        newer_state = tab.doc.get_update()
        await tab.close()
        server.terminate()
        rolled = collab(
            "restore", str(tmp_path / "bk"), "--store", str(db), "--rollback", cwd=tmp_path
        )
        assert rolled.returncode == 0, rolled.stderr
        assert "renewed the generation of 1 docs" in rolled.stdout
        server.start()
        new_gen = generation(server, "ops", "notes")
        assert new_gen != old_gen

        # The old tab reconnects presenting its generation: told to reload, nothing merged.
        old = await RawPeer.connect(server.ws_url("ops", "notes", f"gen={old_gen}"), sync=False)
        with contextlib.suppress(Exception):
            await old.websocket.send(framing.sync_update(newer_state))
        await old.closed.wait()
        assert old.close_code == 4409
        assert old.other_frames == [] and str(old.text) == ""

        fresh = await RawPeer.connect(server.ws_url("ops", "notes", f"gen={new_gen}"))
        assert str(fresh.text) == "hello"
        await fresh.close()
    server.terminate()
    assert str(stored_doc(db, "ops", "notes").get("text", type=Text)) == "hello"


def _seed_deep_chain(db: Path, depth: int) -> None:
    """A 20,000-deep nested Y.Map chain, one level per update, written straight into SQLite."""
    client = 7
    rows = [update((client, 0, [root_item("r", MAP_TYPE, 7, sub="k")]))]
    for level in range(2, depth + 1):
        rows.append(
            update((client, level - 1, [id_parent_item(client, level - 2, MAP_TYPE, 7, "k")]))
        )
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO docs (room, name, generation, created_at, last_seq) VALUES (?,?,?,?,?)",
            ("evil", "deep", uuid.uuid4().hex, time.time(), len(rows)),
        )
        conn.executemany(
            "INSERT INTO doc_updates (room, name, seq, data) VALUES (?, ?, ?, ?)",
            [("evil", "deep", i + 1, data) for i, data in enumerate(rows)],
        )
    conn.close()


async def test_verify_and_compact_survive_a_20000_deep_doc(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server: CollabServer = server_factory()
    with anyio.fail_after(20):
        for i in range(3):
            await (await write(server, "ops", "fine", f"line {i}\n")).close()
    server.terminate()
    db = tmp_path / "collab.db"
    _seed_deep_chain(db, 20_000)

    verify = collab("verify", str(db), cwd=tmp_path)
    assert verify.returncode == 3, verify.stdout + verify.stderr  # "bad doc", not a signal
    assert "checked 2 docs: 1 bad" in verify.stdout
    assert "BAD evil/deep: log seq 65: type nesting too deep" in verify.stdout
    report = json.loads(collab("verify", str(db), "--json", cwd=tmp_path).stdout)
    assert [b["doc"] for b in report["bad_docs"]] == ["deep"] and report["checked"] == 2

    stats = json.loads(collab("stats", "--store", str(db), "--json", cwd=tmp_path).stdout)
    assert stats["docs"] == 2 and stats["log_rows"] >= 20_000
    assert stats["largest"][0]["name"] == "deep"

    compact = collab("compact", "--store", str(db), cwd=tmp_path)
    assert compact.returncode == 0, compact.stdout + compact.stderr
    assert "compacted 1 docs" in compact.stdout and "skipped evil/deep" in compact.stdout
    after = json.loads(collab("stats", "--store", str(db), "--json", cwd=tmp_path).stdout)
    fine = next(d for d in after["largest"] if d["name"] == "fine")
    assert fine["log_rows"] == 0 and fine["snapshot_bytes"] > 0
    assert str(stored_doc(db, "ops", "fine").get("text", type=Text)) == "line 0\nline 1\nline 2\n"


async def test_gen_of_a_doc_created_on_this_server_is_accepted(
    server_factory: ServerFactory,
) -> None:
    server: CollabServer = server_factory()
    with anyio.fail_after(20):
        first = await write(server, "ops", "new", "created here")
        gen = generation(server, "ops", "new")  # the doc stays loaded: the in-memory check
        same = await RawPeer.connect(server.ws_url("ops", "new", f"gen={gen}"))
        assert str(same.text) == "created here"
        stale = await RawPeer.connect(server.ws_url("ops", "new", "gen=0123abcd"), sync=False)
        await stale.closed.wait()
        assert stale.close_code == 4409
        gone = await RawPeer.connect(server.ws_url("ops", "missing", f"gen={gen}"), sync=False)
        await gone.closed.wait()
        assert gone.close_code == 4409  # a deleted doc's old tab must not re-create it
        for peer in (first, same):
            await peer.close()


async def test_backup_and_verify_cover_chat_and_its_archive(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(chat_live_messages=5)
    async with httpx.AsyncClient(
        base_url=server.http_url + "/api/v1",
        headers={"authorization": f"Bearer {server.dev_token}"},
        timeout=10,
    ) as api:
        assert (await api.post("/rooms", json={"id": "talk", "title": "Talk"})).status_code == 201
        for n in range(12):
            body = {"text": f"m{n}", "client_id": f"c{n}"}
            r = await api.post("/rooms/talk/messages", json=body)
            assert r.status_code == 201, r.text
    code, out = await acollab(
        "backup", str(tmp_path / "bk"), "--store", str(tmp_path / "collab.db"), cwd=tmp_path
    )
    assert code == 0, out
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["counts"]["messages"] == 12
    verify = collab("verify", str(tmp_path / "bk"), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "12 chat messages (7 archived)" in verify.stdout

    other = tmp_path / "elsewhere"
    restored = collab(
        "restore", str(tmp_path / "bk"), "--store", str(other / "collab.db"), cwd=tmp_path
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    second = CollabServer(other, store=f"sqlite:///{other / 'collab.db'}", chat_live_messages=5)
    try:
        second.start()
        async with httpx.AsyncClient(
            base_url=second.http_url + "/api/v1",
            headers={"authorization": f"Bearer {second.dev_token}"},
            timeout=10,
        ) as again:
            items = (await again.get("/rooms/talk/messages")).json()["items"]
        assert [m["text"] for m in items] == [f"m{n}" for n in range(12)]
        peer = await RawPeer.connect(second.ws_url("talk", "chat"))
        try:
            live = peer.doc.get("messages", type=Map).to_py() or {}
            assert sorted(int(m["seq"]) for m in live.values()) == list(range(8, 13))
        finally:
            await peer.close()
    finally:
        second.stop()

    # A hole in a room's numbering is reported, and verify fails.
    broken = tmp_path / "broken.db"
    shutil.copy(tmp_path / "bk" / "collab.db", broken)
    with contextlib.closing(sqlite3.connect(broken)) as conn, conn:
        conn.execute("DELETE FROM messages WHERE room_id='talk' AND seq=3")
    bad = collab("verify", str(broken), cwd=tmp_path)
    assert (
        bad.returncode == 3 and "BAD talk/chat: messages: 11 rows but seq runs 1..12" in bad.stdout
    )
