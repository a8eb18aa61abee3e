"""`collab user|token|audit` against a running server's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.api.conftest import Api, assert_error
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio


def collab(api: Api, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "collab", *args, "--store", api.server.store],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=api.server.workdir,
    )
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result


def test_user_list_disable_enable(api: Api) -> None:
    alice = api.user("alice", email="alice@example.com", verified=True)
    listed = [
        json.loads(line) for line in collab(api, "user", "list", "--json").stdout.splitlines()
    ]
    assert {u["name"] for u in listed} >= {"alice", "Dev user"}
    assert alice.user_id in collab(api, "user", "list").stdout
    out = collab(api, "user", "disable", "alice@example.com").stdout
    assert alice.user_id in out and "disabled" in out
    assert_error(alice.http.get("/me"), 401, "unauthorized")
    assert "disabled" in collab(api, "user", "list").stdout
    collab(api, "user", "enable", alice.user_id)
    assert alice.http.get("/me").status_code == 200
    assert "no user" in collab(api, "user", "disable", "nobody", ok=False).stderr
    actions = [
        json.loads(line)["action"] for line in collab(api, "audit", "--json").stdout.splitlines()
    ]
    # Between them, alice's refused request is audited as a failed credential (issue 8, 6).
    assert actions[:3] == ["user.enable", "auth.failure", "user.disable"]


async def test_token_create(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    secret = collab(api, "token", "create", "--user", alice.user_id).stdout.strip()
    r = api.anonymous().get("/me", headers={"authorization": f"Bearer {secret}"})
    assert r.status_code == 200 and r.json()["id"] == alice.user_id
    jwt = collab(
        api,
        "token",
        "create",
        "--user",
        alice.user_id,
        "--room",
        "r",
        "--role",
        "viewer",
        "--ttl",
        "60",
    ).stdout.strip()
    me = api.anonymous().get("/me", headers={"authorization": f"Bearer {jwt}"}).json()
    assert me["room_scope"] == "r" and me["role_ceiling"] == "viewer"
    with anyio.fail_after(10):
        owner = await RawPeer.connect(api.server.ws_url("r", "d", token=alice.token))
        await owner.insert(0, "hi")
        await owner.request_saved(1)
        await owner.wait_for(lambda: owner.saved == 1)
        peer = await RawPeer.connect(api.server.ws_url("r", "d", token=jwt))
        assert str(peer.text) == "hi"
        await peer.close()
        await owner.close()
    bob = api.user("bob")
    collab(api, "token", "create", "--user", bob.user_id, "--room", "r", ok=False)
    collab(
        api, "token", "create", "--user", alice.user_id, "--room", "r", "--ttl", "99999", ok=False
    )
    collab(api, "token", "create", "--user", alice.user_id, "--role", "viewer", ok=False)


def test_a_room_token_minted_by_the_cli_raises_the_token_ttl_mark(
    server_factory: ServerFactory,
) -> None:
    """`collab token create` runs with its own settings (here the default 3600 s) and may mint
    a room token longer than any server allows; the store's mark rises to its lifetime first,
    so a revocation through a server is kept that long (collab.meta.room_tokens)."""
    api = Api(server_factory(token_max_ttl=60))
    assert api.server.with_meta(lambda meta: meta.token_ttl_mark()) == 60
    alice = api.user("alice")
    api.room("r", owner=alice)
    args = ("token", "create", "--user", alice.user_id, "--room", "r", "--ttl", "3000")
    assert collab(api, *args).stdout.strip()
    assert api.server.with_meta(lambda meta: meta.token_ttl_mark()) == 3000
    api.close()


def test_audit_and_bots(api: Api) -> None:
    alice = api.user("alice")
    api.room("r", owner=alice)
    api.room("s", owner=alice)
    bot_id = collab(api, "user", "create-bot", "builder").stdout.strip()
    assert (
        alice.http.post("/rooms/r/members", json={"user_id": bot_id, "role": "editor"}).status_code
        == 201
    )
    assert alice.http.post("/rooms/r/tokens", json={"user_id": bot_id}).status_code == 201
    lines = collab(api, "audit", "--room", "r", "--limit", "2").stdout.splitlines()
    assert len(lines) == 2 and "token.mint" in lines[0] and "member.add" in lines[1]
    assert all("room=r" in line for line in lines)
    everything = collab(api, "audit").stdout
    assert "room=s" in everything and "room.create" in everything


def test_admin_commands_read_the_config_file(api: Api, tmp_path: Path) -> None:
    """`user`, `token create` and `audit` read --config / COLLAB_CONFIG like `serve` does."""
    alice = api.user("alice", email="alice@example.com", verified=True)
    api.room("r", owner=alice)
    elsewhere = tmp_path / "elsewhere"  # its ./collab.db would be the default store
    elsewhere.mkdir()
    config = elsewhere / "collab.toml"
    config.write_text(f'store = "{api.server.store}"\ntoken_max_ttl = 120\n', "utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}

    def run(*args: str, via_env: bool = False, ok: bool = True) -> str:
        flags = [] if via_env else ["--config", str(config)]
        result = subprocess.run(
            [sys.executable, "-m", "collab", *args, *flags],
            env={**clean, "COLLAB_CONFIG": str(config)} if via_env else clean,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=elsewhere,
        )
        assert (result.returncode == 0) == ok, result.stdout + result.stderr
        return result.stdout if ok else result.stderr

    listed = [json.loads(line) for line in run("user", "list", "--json").splitlines()]
    assert alice.user_id in {u["id"] for u in listed}
    assert "disabled" in run("user", "disable", "alice@example.com", via_env=True)
    assert "enabled" in run("user", "enable", alice.user_id)
    assert run("user", "create-bot", "builder", via_env=True).strip()
    mint = ("token", "create", "--user", alice.user_id, "--room", "r", "--ttl")
    # The file's token_max_ttl (120), not the default (3600), bounds --ttl.
    assert "[1, 120]" in run(*mint, "200", ok=False)
    jwt = run(*mint, "60", via_env=True).strip()
    me = api.anonymous().get("/me", headers={"authorization": f"Bearer {jwt}"}).json()
    assert me["id"] == alice.user_id and me["room_scope"] == "r"
    actions = [json.loads(line)["action"] for line in run("audit", "--json").splitlines()]
    assert actions[:4] == ["token.mint", "user.create_bot", "user.enable", "user.disable"]
    assert not (elsewhere / "collab.db").exists()
