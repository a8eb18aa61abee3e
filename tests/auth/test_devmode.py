"""Dev mode (no identity provider): the printed token is the only way in, loopback only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import CollabServer, ServerFactory, free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    env.update(extra)
    return env


def test_nothing_without_the_token(server_factory: ServerFactory) -> None:
    server = server_factory()
    for path in ("/", "/login"):
        response = httpx.get(server.http_url + path, timeout=10)
        assert response.status_code == 401, path
        assert "DEV MODE" in response.text
        assert "printed" in response.text and "/login?token=" in response.text
    assert httpx.get(server.http_url + "/auth/session", timeout=10).status_code == 401
    # A proxy in front changes nothing: the token is still required.
    proxied = httpx.get(
        server.http_url + "/", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert proxied.status_code == 401
    wrong = httpx.get(server.http_url + "/login", params={"token": "guess"}, timeout=10)
    assert wrong.status_code == 401 and "collab_session" not in wrong.cookies
    assert "login.failure" in [a for a, _ in _audit(server)]
    assert "guess" not in server.log()


def test_token_logs_in_the_dev_user(server_factory: ServerFactory) -> None:
    server = server_factory(dev_token="fixed-dev-token-for-this-test")
    with httpx.Client(timeout=10) as client:
        response = client.get(server.http_url + "/login", params={"token": server.dev_token})
        assert response.status_code == 303
        assert response.headers["location"] == server.http_url + "/"
        assert client.cookies["collab_session"] != server.dev_token
        home = client.get(server.http_url + "/")
        assert home.status_code == 200
        # Signed in: the workspace's shell (it shows the dev banner and the user's name).
        assert 'id="app"' in home.text and home.headers["cache-control"] == "no-store"
        me = client.get(server.http_url + "/auth/session").json()
        assert me["dev_mode"] is True and me["user"]["name"] == "Dev user"
        # Signed in already: /login without the token goes home instead of refusing.
        assert client.get(server.http_url + "/login").status_code == 303
        logout = client.post(server.http_url + "/logout", headers={"Origin": server.http_url})
        assert logout.status_code == 200
        assert client.get(server.http_url + "/").status_code == 401
    path = server.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        users = db.execute("SELECT issuer, subject, name FROM users").fetchall()
    assert users == [("collab:dev", "dev", "Dev user")]
    actions = [a for a, _ in _audit(server)]
    assert actions.count("login.success") == 1 and actions.count("logout") == 1
    # Only the printed login URL carries the token; the access log redacts query strings.
    leaks = [line for line in server.log().splitlines() if server.dev_token in line]
    assert leaks == [f"    {server.http_url}/login?token={server.dev_token}"]
    assert "token=***" in server.log()


def test_fixed_dev_token_survives_restart(server_factory: ServerFactory) -> None:
    server = server_factory(dev_token="stays-the-same-across-restarts")
    url = server.http_url + "/login?token=stays-the-same-across-restarts"
    assert httpx.get(url, timeout=10).status_code == 303
    server.restart()
    with httpx.Client(timeout=10) as client:
        assert client.get(url).status_code == 303
        assert client.get(server.http_url + "/").status_code == 200


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "collab", "serve", *args],
            cwd=tmp_path,
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_printed_login_url_on_stdout(
    serve_process: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    port = free_port()
    proc = serve_process("--port", str(port), "--store", f"sqlite:///{tmp_path / 'c.db'}")
    assert proc.stdout is not None
    deadline = time.monotonic() + 15
    url = None
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "/login?token=" in line:
            url = line.strip()
    assert url is not None, proc.stderr.read() if proc.stderr else ""
    assert url.startswith(f"http://127.0.0.1:{port}/login?token=")
    token = url.rsplit("=", 1)[1]
    assert len(token) >= 32  # random, unguessable
    with httpx.Client(timeout=10) as client:
        assert client.get(url).status_code == 303
        assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
    proc.terminate()
    _, stderr = proc.communicate(timeout=15)
    assert token not in stderr  # logs never carry it


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_non_loopback_bind_refused_without_oidc(
    serve_process: Callable[..., subprocess.Popen[str]], host: str
) -> None:
    proc = serve_process("--host", host, "--port", str(free_port()), "--store", "memory://")
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert f"refusing to bind {host!r} in dev mode" in stderr
    assert "COLLAB_OIDC_ISSUER" in stderr and "loopback" in stderr
    assert "/login?token=" not in stdout


def _audit(server: CollabServer) -> list[tuple[str, dict[str, object]]]:
    path = server.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT action, detail FROM audit ORDER BY id").fetchall()
    return [(action, json.loads(detail)) for action, detail in rows]


def test_a_short_dev_token_is_refused_at_start(
    serve_process: Callable[..., subprocess.Popen[str]],
) -> None:
    proc = serve_process(
        "--port", str(free_port()), "--store", "memory://", COLLAB_DEV_TOKEN="hunter2-short"
    )
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode != 0
    problem = [line for line in stderr.splitlines() if "COLLAB_DEV_TOKEN" in line]
    assert len(problem) == 1 and "at least 16" in problem[0], stderr
    assert "hunter2-short" not in stdout + stderr
    assert "/login?token=" not in stdout


def test_a_new_dev_token_locks_out_what_the_old_one_minted(
    server_factory: ServerFactory,
) -> None:
    """What happens to personal tokens minted in dev mode when the dev token changes: they
    are revoked with the old token's sessions (README, Dev mode)."""
    server = server_factory(dev_token="the-first-dev-token-value")
    api = server.http_url + "/api/v1"
    dev = {"Authorization": f"Bearer {server.dev_token}"}
    with httpx.Client(timeout=10) as client:
        minted = client.post(api + "/tokens", headers=dev, json={"name": "script"}).json()
        personal = {"Authorization": f"Bearer {server.remember(minted['token'])}"}
        login = client.get(server.http_url + "/login", params={"token": server.dev_token})
        assert login.status_code == 303
    cookie = {"Cookie": f"collab_session={login.cookies['collab_session']}"}
    server.restart()  # the same token: everything it minted lives on
    assert httpx.get(api + "/me", headers=personal, timeout=10).status_code == 200
    assert httpx.get(api + "/me", headers=cookie, timeout=10).status_code == 200
    server.dev_token = "a-second-dev-token-value"
    server.restart()
    assert httpx.get(api + "/me", headers=personal, timeout=10).status_code == 401
    assert httpx.get(api + "/me", headers=cookie, timeout=10).status_code == 401
    new = {"Authorization": f"Bearer {server.dev_token}"}
    assert httpx.get(api + "/me", headers=new, timeout=10).status_code == 200
    assert "dev_token.changed" in [a for a, _ in _audit(server)]
