"""A password given in a store or fan-out URL's query string (``?password=``, which libpq and
redis-py both accept, as deploy/collab-node@.service's "or in the URL" invites) is masked
wherever collab prints the URL, as one in the user information is."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import collab

SECRET = "hunter2-in-the-query"


def test_migrate_and_verify_mask_a_query_string_password(pg_empty_url: str, tmp_path: Path) -> None:
    url = f"{pg_empty_url}?password={SECRET}&sslmode=disable"  # trust auth: ignored, accepted
    for command in (["migrate"], ["migrate"], ["verify"]):
        result = collab(*command, "--store", url, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr, (command, result.stdout)
        assert "password=********" in result.stdout, result.stdout


def test_config_check_masks_query_string_passwords(tmp_path: Path) -> None:
    store = f"postgresql://app@db.example/collab?sslmode=require&password={SECRET}"
    fanout = f"redis://redis.example:6379/0?password={SECRET}-redis"
    result = collab("config", "check", "--store", store, "--fanout", fanout, cwd=tmp_path)
    assert SECRET not in result.stdout + result.stderr, result.stdout
    lines = result.stdout.splitlines()
    assert (
        'store = "postgresql://app@db.example/collab?sslmode=require&password=********"  # cli'
        in lines
    )
    assert 'fanout = "redis://redis.example:6379/0?password=********"  # cli' in lines
