"""Uploads through the shipped nginx configuration (deploy/nginx-collab.conf): a file larger
than nginx's default body limits gets through, and nginx streams it to collab instead of
spooling it to its own disk first (``proxy_request_buffering off``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.support.nginx import shipped_nginx_running
from tests.support.server import CollabServer

MB = 1024 * 1024


def test_an_upload_streams_through_the_shipped_nginx(server: CollabServer, tmp_path: Path) -> None:
    data = os.urandom(24 * MB)
    auth = {"authorization": f"Bearer {server.dev_token}"}
    with (
        shipped_nginx_running(tmp_path, server.port) as nginx,
        nginx.client(headers=auth, timeout=60) as client,
    ):
        base, root = f"{nginx.base}/api/v1", nginx.root
        assert client.post(f"{base}/rooms", json={"id": "r", "title": "r"}).status_code == 201
        r = client.post(f"{base}/rooms/r/files", files={"file": ("big.bin", data)})
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
        got = client.get(f"{base}/rooms/r/files/{r.json()['id']}", headers={"range": "bytes=-7"})
        assert got.status_code == 206 and got.content == data[-7:]
    spooled = (
        [p for p in (root / "body").rglob("*") if p.is_file()] if (root / "body").exists() else []
    )
    assert spooled == []
    assert "buffered to a temporary file" not in (root / "error.log").read_text()
