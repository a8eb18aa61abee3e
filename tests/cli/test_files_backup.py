"""Uploaded files in backups (issue 12, Done means 6): a backup taken while uploads go on holds
the bytes of every file its database references, a restore elsewhere serves each of them byte
for byte, verify re-hashes them and reports a flipped byte, and stats counts them."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import anyio
import httpx
import pytest

from tests.cli.test_ops import acollab
from tests.support.cli import collab
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


def referenced(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(row) for row in conn.execute("SELECT room_id, id, sha256 FROM files")]
    finally:
        conn.close()


async def test_a_backup_under_upload_load_restores_every_referenced_file(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server: CollabServer = server_factory(api_create_burst=100_000)  # no upload rate here
    auth = {"authorization": f"Bearer {server.dev_token}"}
    uploaded = 0
    stop = anyio.Event()

    async with httpx.AsyncClient(
        base_url=server.http_url + "/api/v1", headers=auth, timeout=30
    ) as http:
        for room in ("a", "b"):
            assert (await http.post("/rooms", json={"id": room, "title": room})).status_code == 201

        async def uploader(room: str) -> None:
            nonlocal uploaded
            while not stop.is_set():
                data = os.urandom(64 * 1024 + uploaded)
                r = await http.post(f"/rooms/{room}/files", files={"file": ("f.bin", data)})
                assert r.status_code == 201, r.text
                uploaded += 1

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(uploader, "a")
                tg.start_soon(uploader, "b")
                await wait_until(lambda: uploaded >= 20)
                before = uploaded
                code, out = await acollab(
                    "backup", str(tmp_path / "bk"), "--store", str(tmp_path / "collab.db"),
                    cwd=tmp_path,
                )  # fmt: skip
                during = uploaded - before
                await wait_until(lambda: uploaded >= before + during + 10)  # and after it
                stop.set()
    assert code == 0, out
    assert during > 0, "no upload went on while the backup ran"
    backup = tmp_path / "bk"
    in_backup = referenced(backup / "collab.db")
    assert before <= len(in_backup) < uploaded
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["counts"]["files"] == len(in_backup) and manifest["files_problems"] == []
    assert "files" in out

    verify = collab("verify", str(backup), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"checked {len(in_backup)} files" in verify.stdout

    # Restore elsewhere and serve it: every referenced file comes back byte for byte.
    other = tmp_path / "elsewhere"
    restored = collab("restore", str(backup), "--store", str(other / "collab.db"), cwd=tmp_path)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"with {len(in_backup)} files" in restored.stdout
    second = CollabServer(other, store=f"sqlite:///{other / 'collab.db'}")
    try:
        second.start()
        headers = {"authorization": f"Bearer {second.dev_token}"}
        async with httpx.AsyncClient(base_url=second.http_url, headers=headers) as http:
            for room, file_id, sha256 in in_backup:
                r = await http.get(f"/api/v1/rooms/{room}/files/{file_id}")
                assert r.status_code == 200, r.text
                assert hashlib.sha256(r.content).hexdigest() == sha256
    finally:
        second.stop()
    again = collab("restore", str(backup), "--store", str(other / "collab.db"), cwd=tmp_path)
    assert again.returncode == 0 and f"with {len(in_backup)} files" in again.stdout

    stats = collab("stats", "--store", str(other / "collab.db"), "--json", cwd=tmp_path)
    counted = json.loads(stats.stdout)
    assert counted["uploads"] == len(in_backup) == counted["stored_files"]
    text = collab("stats", "--store", str(other / "collab.db"), cwd=tmp_path).stdout
    assert f"files: {len(in_backup)} uploads" in text

    # One flipped byte in one backed-up file: verify names it and exits 3.
    _, _, victim = in_backup[len(in_backup) // 2]
    blob = backup / "files" / victim[:2] / victim[2:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    broken = collab("verify", str(backup), cwd=tmp_path)
    assert broken.returncode == 3, broken.stdout + broken.stderr
    assert f"BAD file {victim}: its bytes do not match its SHA-256" in broken.stdout
    report = json.loads(collab("verify", str(backup), "--json", cwd=tmp_path).stdout)
    assert report["ok"] is False and report["files"]["corrupt"] == [victim]
    # A missing one too; and a restore from the broken backup refuses to copy the bad bytes.
    (backup / "files" / in_backup[0][2][:2] / in_backup[0][2][2:]).unlink()
    report = json.loads(collab("verify", str(backup), "--json", cwd=tmp_path).stdout)
    assert report["files"]["missing"] == [in_backup[0][2]]
    third = tmp_path / "third"
    partial = collab("restore", str(backup), "--store", str(third / "collab.db"), cwd=tmp_path)
    assert partial.returncode == 0 and f"file {victim}: its bytes do not match" in partial.stderr
    assert not (third / "files" / victim[:2] / victim[2:]).exists()


async def test_the_live_store_is_verified_too(server: CollabServer, tmp_path: Path) -> None:
    """``collab verify collab.db`` re-hashes the files beside the database."""
    headers = {"authorization": f"Bearer {server.dev_token}"}
    async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers) as http:
        await http.post("/rooms", json={"id": "r", "title": "r"})
        r = await http.post("/rooms/r/files", files={"file": ("a.txt", b"abc")})
        found = r.json()
    ok = collab("verify", str(tmp_path / "collab.db"), cwd=tmp_path)
    assert ok.returncode == 0 and "checked 1 files" in ok.stdout, ok.stdout
    blob = tmp_path / "files" / found["sha256"][:2] / found["sha256"][2:]
    blob.write_bytes(b"abd")
    bad = collab("verify", str(tmp_path / "collab.db"), cwd=tmp_path)
    assert bad.returncode == 3 and found["sha256"] in bad.stdout
