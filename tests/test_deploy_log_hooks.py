"""The shipped nginx configurations keep an incoming webhook's secret out of their access log.

An incoming webhook's URL is its credential: ``/api/v1/hooks/{id}.{secret}`` (collab.api.hooks;
collab's own logs redact it, collab.auth.redact's SECRET_PATHS). nginx in front logs every
request line through the shipped ``collab_redacted`` format, which replaced invite codes only:
a build server posting into a room left the hook's live secret in nginx's access log. Each
shipped file runs as shipped (ports, paths and certificate rewritten) in front of a real
server, a real hook is posted to through it, and the logs are read back."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import Api, api
from tests.support.balancer import Balancer
from tests.support.nginx import shipped_nginx_running

__all__ = ["api"]  # the fixture


def _hook_path(api: Api) -> tuple[str, str]:
    """A real incoming webhook's path (/api/v1/hooks/{id}.{secret}) and its secret."""
    room = api.room("r")
    made = api.dev.http.post(f"/rooms/{room}/hooks", json={"name": "Build Bot"})
    assert made.status_code == 201, made.text
    path: str = made.json()["path"]
    return path, path.rsplit(".", 1)[1]


def _post(client: httpx.Client, url: str) -> None:
    r = client.post(url, json={"text": "build 42 passed"})
    assert r.status_code in (200, 201), r.text


def test_one_node_nginx_logs_no_hook_secret(api: Api, tmp_path: Path) -> None:
    path, secret = _hook_path(api)
    with shipped_nginx_running(tmp_path, api.server.port) as nginx, nginx.client(timeout=5) as c:
        _post(c, nginx.base + path)
    logs_text = "".join(log.read_text() for log in nginx.root.glob("*.log"))
    assert secret not in logs_text, logs_text
    assert '"POST /collab/api/v1/hooks/*** HTTP/1.1" 20' in logs_text, logs_text


def test_nodes_nginx_logs_no_hook_secret(api: Api, tmp_path: Path) -> None:
    path, secret = _hook_path(api)
    balancer = Balancer(tmp_path / "nginx", [api.server.port] * 3)  # one node, three entries
    balancer.start()
    try:
        with httpx.Client(verify=balancer.context, timeout=5) as client:
            _post(client, balancer.base + path)
    finally:
        balancer.stop()
    logs_text = balancer.access_log() + balancer.errors()
    assert secret not in logs_text, logs_text
    assert '"POST /collab/api/v1/hooks/*** HTTP/1.1" 20' in logs_text, logs_text
