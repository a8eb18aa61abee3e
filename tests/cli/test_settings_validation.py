"""Every setting is checked in one place, so every command agrees (issue 8 item 17).

A bad value is one ``Error:`` line naming the setting, the value (secrets masked) and where it
came from (flag, environment, config file), and a non-zero exit before anything starts. Run
over the real CLI: ``python -m collab ...`` in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collab.settings import SETTINGS_FIELDS, Settings, SettingsError
from collab.settings.checks import CHECKS
from tests.support.server import free_port

STORE = "mysql://app:hunter2-db-password@db.example/collab"


def collab(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COLLAB_")}
    return subprocess.run(
        [sys.executable, "-m", "collab", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_serve_refuses_a_port_out_of_range_before_listening(tmp_path: Path) -> None:
    """Before: "serving on ...:99999" and a listener on 34463 (the number wrapped)."""
    result = collab("serve", "--port", "99999", cwd=tmp_path, timeout=20)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "Error: port = 99999 (from --port): must be a TCP port, 1-65535 (0 picks a free one)"
    ]
    assert "serving" not in result.stdout
    assert not (tmp_path / "collab.db").exists()  # nothing started, nothing created


def test_an_unknown_store_scheme_stops_every_command_naming_its_source(tmp_path: Path) -> None:
    """Before: migrate said "nothing to migrate" (exit 0), config check passed, serve died with
    a traceback. Now each names COLLAB_STORE, masks the password, and exits non-zero."""
    env = {"COLLAB_STORE": STORE}
    line = (
        'store = "mysql://app:********@db.example/collab" (from COLLAB_STORE): unknown '
        "store scheme 'mysql': collab opens sqlite:///path, a bare path, postgresql://... or "
        "memory://"
    )
    backup_dir, src = tmp_path / "backup", tmp_path / "src.db"
    src.touch()
    commands = [
        ["serve"],
        ["migrate"],
        ["backup", str(backup_dir)],
        ["restore", str(src)],
        ["verify", str(src)],
        ["compact"],
        ["stats"],
        ["user", "list"],
        ["token", "create", "--user", "someone"],
        ["audit"],
        ["purge"],
    ]
    for command in commands:
        result = collab(*command, cwd=tmp_path, env=env)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [f"Error: {line}"], (command, result.stderr)
        assert "hunter2" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    check = collab("config", "check", cwd=tmp_path, env=env)
    assert check.returncode == 1  # README: config check exits 1 on a bad store URL
    assert f"problem: {line}" in check.stderr.splitlines()
    assert 'store = "mysql://app:********@db.example/collab"  # env COLLAB_STORE' in (
        check.stdout.splitlines()
    )
    assert "hunter2" not in check.stdout + check.stderr
    assert not backup_dir.exists() and not list(tmp_path.glob("*.db-*"))


def test_each_source_is_named_and_every_bad_value_reported(tmp_path: Path) -> None:
    config = tmp_path / "collab.toml"
    config.write_text('max_doc_size = -1\nlog_level = "loud"\n', "utf-8")
    env = {"COLLAB_SEND_TIMEOUT": "nan", "COLLAB_MAX_CONNECTIONS": "lots"}
    result = collab(
        "migrate", "--config", str(config), "--store", "memory://", cwd=tmp_path, env=env
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"Error: max_doc_size = -1 (from config file {config}): must be at least 1",
        "Error: send_timeout = nan (from COLLAB_SEND_TIMEOUT): must be a finite number",
        f'Error: log_level = "loud" (from config file {config}): must be one of debug, info, '
        "warning, error, critical",
        'Error: max_connections = "lots" (from COLLAB_MAX_CONNECTIONS): must be an integer',
    ]
    check = collab("config", "check", "--config", str(config), cwd=tmp_path, env=env)
    assert check.returncode == 1
    assert len([ln for ln in check.stderr.splitlines() if ln.startswith("problem: ")]) == 4
    assert "max_doc_size = -1  # file" in check.stdout.splitlines()


def test_values_fine_alone_but_not_together_and_secrets_masked(tmp_path: Path) -> None:
    port = free_port()
    result = collab(
        "serve",
        "--port",
        str(port),
        "--metrics-port",
        str(port),
        "--secret-key",
        "short",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        'Error: secret_key = "********" (from --secret-key): each key needs at least 16 characters'
    ]
    result = collab("serve", "--port", str(port), "--metrics-port", str(port), cwd=tmp_path)
    assert result.stderr.splitlines() == [
        f"Error: metrics_port = {port} (from --metrics-port): must differ from port"
    ]
    keyfile = collab("serve", "--ssl-keyfile", str(tmp_path / "missing.key"), cwd=tmp_path)
    assert keyfile.stderr.splitlines() == [
        f'Error: ssl_keyfile = "{tmp_path / "missing.key"}" (from --ssl-keyfile): no such file'
    ]


def test_every_setting_has_a_check_and_the_defaults_pass() -> None:
    assert set(CHECKS) == {f.name for f in SETTINGS_FIELDS}
    assert Settings.from_env({}) == Settings()  # every default is valid


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("port", -1, 0),
        ("port", 65536, 65535),
        ("store", "sqlite:relative.db", "sqlite:///relative.db"),
        ("store", "redis://x", "./collab.db"),
        ("public_url", "collab.example.com", "https://collab.example.com/base"),
        ("public_url", "https://c.example.com/?x=1", "http://127.0.0.1:8000"),
        ("allowed_origins", "https://a.example/path", "https://a.example, http://b:81"),
        ("sqlite_synchronous", "OFF", "normal"),
        ("log_format", "xml", "text"),
        ("ws_ping_timeout", 0.0, 0.1),
        ("header_timeout", 0.0, 30.0),
        ("overload_lag_seconds", -1.0, 0.0),
        ("max_rooms_per_user", -1, 0),
        ("handshake_burst", 0, 1),
        ("token_max_ttl", float("inf"), 60.0),
        ("api_create_rate", 0.0, 0.5),
        ("purge_interval", -1.0, 0.0),
        ("fanout", "kafka://x", "redis://127.0.0.1:6379/0"),
        ("fanout", "redis://", "none"),
        ("fanout", "redis://h:99999/0", "rediss://:pw@h:6380/1"),
        ("fanout_prefix", "{room}", "collab.test-1"),
        ("head_poll_interval", 0.0, 0.5),
        ("head_poll_degraded", -1.0, 0.1),
        ("role_recheck_interval", 0.0, 1.0),
        ("user_recheck_interval", 0.0, 1.0),
        ("body_timeout", 0.0, 5.0),
    ],
)
def test_bounds(name: str, bad: object, good: object) -> None:
    with pytest.raises(SettingsError, match=rf"^{name} = .* \(from --{name.replace('_', '-')}\)"):
        Settings.from_env({}, **{name: bad})
    assert getattr(Settings.from_env({}, **{name: good}), name) == good
