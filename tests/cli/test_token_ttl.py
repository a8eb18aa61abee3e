"""A room token lives at least one second, wherever its lifetime is set: ``collab token create
--ttl`` (a fraction minted a token whose ``exp`` equals its ``iat``, dead on arrival, and printed
it, exit 0) and ``token_max_ttl`` (below one second every server accepted it, then answered
every room token request 400 "'ttl' must be between 1 and 0 seconds"), as the API's ``ttl``
is since a788806."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import OctKey

from collab.auth.keys import load_secret_keys
from collab.auth.tokens import verify_room_token
from collab.settings import Settings
from tests.api.conftest import Api
from tests.support.cli import collab


def _run(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collab", *args, "--store", api.server.store],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=api.server.workdir,
        check=False,
    )


def test_token_create_refuses_a_ttl_below_one_second(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    for ttl in ("0.001", "0.5", "0.999"):
        result = _run(api, "token", "create", "--user", alice.user_id, "--room", "r", "--ttl", ttl)
        assert result.returncode == 2, (ttl, result.stdout, result.stderr)
        assert result.stdout == "" and "--ttl must be in [1, 3600]" in result.stderr
    before = time.time()
    minted = _run(api, "token", "create", "--user", alice.user_id, "--room", "r", "--ttl", "1")
    assert minted.returncode == 0, minted.stderr
    token = api.server.remember(minted.stdout.strip())
    # It lives at least its second from the mint, whenever in a second that fell (not asked
    # of the server: under load the command's exit alone may take that second).
    keys = load_secret_keys(Settings(store=api.server.store))
    claims = jwt.decode(token, OctKey.import_key(keys[0])).claims
    assert claims["exp"] >= before + 1 and claims["exp"] - claims["iat"] in (1, 2)
    assert verify_room_token(keys, token, now=claims["exp"] - 0.001).user_id == alice.user_id
    longer = _run(api, "token", "create", "--user", alice.user_id, "--room", "r", "--ttl", "60")
    me = api.bearer(api.server.remember(longer.stdout.strip())).get("/me")
    assert me.status_code == 200 and me.json()["id"] == alice.user_id, me.text


def test_token_max_ttl_below_one_second_is_refused_at_start(tmp_path: Path) -> None:
    line = "token_max_ttl = 0.5 (from --token-max-ttl): must be at least 1 (a room token"
    serve = collab(
        "serve", "--store", "memory://", "--token-max-ttl", "0.5", cwd=tmp_path, timeout=60
    )
    assert serve.returncode == 2 and f"Error: {line}" in serve.stderr, serve.stdout + serve.stderr
    check = collab("config", "check", "--token-max-ttl", "0.5", cwd=tmp_path)
    assert check.returncode == 1 and f"problem: {line}" in check.stderr, check.stderr


def test_token_create_with_an_unusable_stored_key_is_one_error_line(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    key_file = Path(api.server.workdir) / "secret_key"
    assert key_file.is_file()
    key_file.write_text("short\n")  # a bad copy: the server keeps the key it read at start
    result = _run(api, "token", "create", "--user", alice.user_id, "--room", "r")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr
    assert result.stderr.startswith("Error: ") and "secret key is empty or too short" in (
        result.stderr
    )
