"""The config file: precedence CLI > env > file > default, unknown keys named, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from collab.cli import main
from collab.settings import ConfigError, Settings, is_secret, load_config_file
from tests.support.server import free_port
from tests.support.waiting import poll_until


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collab.toml"
    path.write_text(text, "utf-8")
    return path


def test_precedence_cli_env_file_default(tmp_path: Path) -> None:
    file_values = load_config_file(
        _toml(tmp_path, 'port = 1111\nhost = "10.0.0.1"\nlog_level = "debug"\nsend_timeout = 3\n')
    )
    env = {"COLLAB_PORT": "2222", "COLLAB_HOST": "10.0.0.2"}
    s = Settings.from_sources(env, file_values, port=3333)
    assert s.port == 3333  # command line over everything
    assert s.host == "10.0.0.2"  # environment over file
    assert s.log_level == "debug"  # file over default
    assert s.send_timeout == 3.0 and isinstance(s.send_timeout, float)
    assert s.max_doc_size == Settings().max_doc_size  # default
    assert Settings.from_sources(env, file_values).port == 2222
    assert Settings.from_sources({}, file_values).port == 1111
    assert Settings.from_sources({}, None).port == 8000


def test_unknown_key_and_wrong_type_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'prot' \(did you mean 'port'\?\)"):
        load_config_file(_toml(tmp_path, "prot = 1\n"))
    with pytest.raises(ConfigError, match="port must be a int, got str"):
        load_config_file(_toml(tmp_path, 'port = "80"\n'))
    with pytest.raises(ConfigError, match="auto_create_rooms must be a bool"):
        load_config_file(_toml(tmp_path, "auto_create_rooms = 1\n"))
    with pytest.raises(ConfigError, match=r"collab\.toml"):
        load_config_file(_toml(tmp_path, "port = \n"))
    with pytest.raises(ConfigError, match="No such file"):
        load_config_file(tmp_path / "missing.toml")


def test_config_check_prints_sources_and_masks_secrets(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        'port = 1111\nlog_level = "debug"\ndev_token = "file-dev-token-value"\n'
        'secret_key = "file-secret-key-0123456789"\n',
    )
    env = {
        "COLLAB_CONFIG": str(path),
        "COLLAB_PORT": "2222",
        "COLLAB_OIDC_ISSUER": "https://login.example.com",
        "COLLAB_OIDC_CLIENT_ID": "collab",
        "COLLAB_OIDC_CLIENT_SECRET": "env-client-secret",
    }
    result = CliRunner().invoke(main, ["config", "check", "--host", "127.0.0.9"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"# config file: {path}" in lines
    assert 'host = "127.0.0.9"  # cli' in lines
    assert "port = 2222  # env COLLAB_PORT" in lines
    assert 'log_level = "debug"  # file' in lines
    assert "compact_rows = 500  # default" in lines
    assert 'dev_token = "********"  # file' in lines
    assert 'secret_key = "********"  # file' in lines
    assert 'oidc_client_secret = "********"  # env COLLAB_OIDC_CLIENT_SECRET' in lines
    for secret in ("file-dev-token-value", "file-secret-key-0123456789", "env-client-secret"):
        assert secret not in result.output
    assert is_secret("metrics_token") and not is_secret("token_max_ttl")

    bad = CliRunner().invoke(main, ["config", "check", "--config", str(_toml(tmp_path, "x=1"))])
    assert bad.exit_code == 2 and "unknown setting 'x'" in bad.output
    dev_public = CliRunner().invoke(main, ["config", "check", "--host", "0.0.0.0"], env={})
    assert dev_public.exit_code == 1 and "problem:" in dev_public.output


def test_serve_reads_the_config_file(tmp_path: Path) -> None:
    port = free_port()
    path = _toml(
        tmp_path,
        f'port = {port}\nstore = "sqlite:///{tmp_path / "from-file.db"}"\n'
        'dev_token = "config-file-dev-token"\n',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab", "serve", "--config", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert poll_until(ready, 15), (tmp_path / "serve.log").read_text()
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/me",
            headers={"authorization": "Bearer config-file-dev-token"},
            timeout=5,
        )
        assert me.status_code == 200
        assert (tmp_path / "from-file.db").exists() and (tmp_path / "from-file.db.lock").exists()
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
