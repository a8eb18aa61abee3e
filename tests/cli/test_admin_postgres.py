"""The admin commands on a PostgreSQL store, as real processes: ``collab migrate`` makes the
meta tables, then ``collab user``, ``collab audit`` and ``collab purge`` read and write them
(what one node's operator does while the others serve)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from collab.meta.postgres import PostgresMetaStore

pytestmark = pytest.mark.anyio


def collab(url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "collab", *args, "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result


async def test_migrate_then_users_audit_and_purge(pg_empty_url: str) -> None:
    applied = collab(pg_empty_url, "migrate").stdout
    assert "0001_documents" in applied and "0002_meta" in applied
    meta = PostgresMetaStore(pg_empty_url)
    await meta.open()
    try:
        alice = await meta.upsert_oidc_user(
            "https://idp",
            "a",
            name="Alice",
            email="Alice@Example.com",
            email_verified=True,
            picture=None,
        )
        await meta.create_session(alice.id, ttl=-1)  # already expired: the purge's to drop
    finally:
        await meta.close()

    bot_id = collab(pg_empty_url, "user", "create-bot", "Build Bot").stdout.strip()
    listed = {
        u["id"]: u
        for u in map(json.loads, collab(pg_empty_url, "user", "list", "--json").stdout.splitlines())
    }
    assert listed[alice.id]["handle"] == "alice" and listed[bot_id]["handle"] == "build-bot"
    # Emails match folding ASCII case, as on SQLite.
    assert alice.id in collab(pg_empty_url, "user", "disable", "alice@EXAMPLE.com").stdout
    assert "disabled" in collab(pg_empty_url, "user", "list").stdout
    actions = [
        json.loads(line)["action"]
        for line in collab(pg_empty_url, "audit", "--json").stdout.splitlines()
    ]
    assert actions == ["user.disable", "user.create_bot"]
    assert "purged 0 invites, 1 sessions" in collab(pg_empty_url, "purge").stdout
