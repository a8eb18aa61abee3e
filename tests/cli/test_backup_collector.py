"""A backup and the collector on the same files: a file whose reference is deleted after the
backup's snapshot (the file, or its whole room), with bytes older than the collector's grace, is
still in the backup. The backup runs in this process, paused between its snapshot and its copy
of the files (a deterministic interleaving); the server and ``collab files gc`` are real child
processes on the same blob directory."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab.ops import backup as backup_module
from collab.ops.blobs import copy_blobs
from collab.store.blobs import blob_path
from tests.metrics.test_metrics import scrape, value
from tests.support.cli import collab
from tests.support.server import CollabServer, ServerFactory
from tests.support.waiting import poll_until

HOUR = 3600.0


def upload(http: httpx.Client, room: str, data: bytes) -> dict[str, Any]:
    """A new room ``room`` with one file of ``data``; the file's record."""
    assert http.post("/rooms", json={"id": room, "title": room}).status_code == 201
    r = http.post(f"/rooms/{room}/files", files={"file": ("f.bin", data)})
    assert r.status_code == 201, r.text
    record: dict[str, Any] = r.json()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    return record


def age(files: Path, sha256: str, seconds: float) -> None:
    """The blob as if last uploaded ``seconds`` ago: old enough for the collector."""
    when = time.time() - seconds
    os.utime(blob_path(files, sha256), (when, when))


def client(server: CollabServer) -> httpx.Client:
    auth = {"authorization": f"Bearer {server.dev_token}"}
    return httpx.Client(base_url=server.http_url + "/api/v1", headers=auth, timeout=30)


def pause_after_snapshot(monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """Run ``meanwhile()`` inside ``backup``, after its snapshot, before it copies files."""

    def paused(conn: Any, source: Path, target: Path) -> Any:
        meanwhile()
        return copy_blobs(conn, source, target)

    monkeypatch.setattr("collab.ops.backup.copy_blobs", paused)


def test_a_file_deleted_after_the_snapshot_is_still_backed_up(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory(purge_interval=0)  # the only collector is the test's
    db, files = tmp_path / "collab.db", tmp_path / "files"
    with client(server) as http:
        deleted = upload(http, "a", b"a file deleted during the backup")
        of_room = upload(http, "b", b"a file of a room deleted during the backup")
        for record in (deleted, of_room):
            age(files, record["sha256"], 2 * HOUR)
        gc_runs: list[str] = []

        def delete_and_collect() -> None:
            assert http.delete(f"/rooms/a/files/{deleted['id']}").status_code == 204
            assert http.delete("/rooms/b").status_code == 204
            gc = collab("files", "gc", "--store", str(db), cwd=tmp_path, timeout=60)
            assert gc.returncode == 0, gc.stdout + gc.stderr
            gc_runs.append(gc.stdout)

        pause_after_snapshot(monkeypatch, delete_and_collect)
        manifest = backup_module.backup(db, tmp_path / "bk")

    assert manifest["files_problems"] == [], manifest["files_problems"]
    assert manifest["counts"]["files"] == 2
    for record in (deleted, of_room):
        copied = blob_path(tmp_path / "bk" / "files", record["sha256"])
        assert hashlib.sha256(copied.read_bytes()).hexdigest() == record["sha256"]
    (gc_out,) = gc_runs
    assert "a backup (or another collector) holds the files" in gc_out
    assert "removed 0 unreferenced files" in gc_out
    verify = collab("verify", str(tmp_path / "bk"), cwd=tmp_path, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads((tmp_path / "bk" / "manifest.json").read_text())["files_problems"] == []

    # Once the backup ended, the collector removes both.
    gc = collab("files", "gc", "--store", str(db), cwd=tmp_path, timeout=60)
    assert gc.returncode == 0 and "removed 2 unreferenced files" in gc.stdout, gc.stdout
    assert "holds the files" not in gc.stdout
    assert not blob_path(files, deleted["sha256"]).exists()
    assert not blob_path(files, of_room["sha256"]).exists()


def test_the_servers_collector_defers_while_a_backup_runs(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory(purge_interval=1)
    db, files = tmp_path / "collab.db", tmp_path / "files"
    metrics = server.http_url + "/metrics"
    with client(server) as http:
        record = upload(http, "a", b"deleted while a backup runs")
        age(files, record["sha256"], 2 * HOUR)

        def delete_and_wait_for_a_deferred_pass() -> None:
            assert http.delete(f"/rooms/a/files/{record['id']}").status_code == 204
            before = value(scrape(metrics)[1], "collab_file_collections_deferred_total")
            # Two passes deferred after the deletion: one began after it, with no reference.
            assert poll_until(
                lambda: (
                    value(scrape(metrics)[1], "collab_file_collections_deferred_total")
                    >= before + 2
                ),
                30,
            ), server.log()
            assert blob_path(files, record["sha256"]).exists()

        pause_after_snapshot(monkeypatch, delete_and_wait_for_a_deferred_pass)
        manifest = backup_module.backup(db, tmp_path / "bk")

    assert manifest["files_problems"] == [] and manifest["counts"]["files"] == 1
    assert "a backup (or another collector's pass) holds the files" in server.log()
    # The backup ended: the server's next pass removes the bytes.
    assert poll_until(lambda: not blob_path(files, record["sha256"]).exists(), 30), server.log()
    collected = value(scrape(metrics)[1], "collab_file_collected_bytes_total")
    assert collected >= len(b"deleted while a backup runs")
