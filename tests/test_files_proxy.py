"""Uploads through the shipped nginx configuration (deploy/nginx-collab.conf): a file larger
than nginx's default body limits gets through, and nginx streams it to collab instead of
spooling it to its own disk first (``proxy_request_buffering off``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.nginx import require_nginx
from tests.support.server import CollabServer, free_port
from tests.support.tls import client_context, self_signed
from tests.test_logs import NGINX_MAIN, shipped_nginx

MB = 1024 * 1024


def test_an_upload_streams_through_the_shipped_nginx(server: CollabServer, tmp_path: Path) -> None:
    binary = require_nginx()
    root = tmp_path / "nginx"
    root.mkdir()
    tls = self_signed(root)
    https, http = free_port(), free_port()
    (root / "collab.conf").write_text(shipped_nginx(root, server.port, https, http, tls))
    (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root))
    proc = subprocess.Popen(
        [binary, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    data = os.urandom(24 * MB)
    auth = {"authorization": f"Bearer {server.dev_token}"}
    try:
        base = f"https://127.0.0.1:{https}/collab/api/v1"
        with httpx.Client(verify=client_context(tls[0]), headers=auth, timeout=60) as client:
            deadline = time.monotonic() + 15
            while True:
                assert proc.poll() is None, (root / "error.log").read_text()
                try:
                    client.get(f"{base}/me")
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            assert client.post(f"{base}/rooms", json={"id": "r", "title": "r"}).status_code == 201
            r = client.post(f"{base}/rooms/r/files", files={"file": ("big.bin", data)})
            assert r.status_code == 201, r.text
            assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
            got = client.get(
                f"{base}/rooms/r/files/{r.json()['id']}", headers={"range": "bytes=-7"}
            )
            assert got.status_code == 206 and got.content == data[-7:]
    finally:
        proc.terminate()
        proc.wait(10)
    spooled = (
        [p for p in (root / "body").rglob("*") if p.is_file()] if (root / "body").exists() else []
    )
    assert spooled == []
    assert "buffered to a temporary file" not in (root / "error.log").read_text()
