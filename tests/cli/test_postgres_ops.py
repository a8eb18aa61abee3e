"""Operations commands on a PostgreSQL store, over the real CLI: `collab verify --store
postgresql://...` walks every doc through the bounded scanner (a hostile deep doc is reported,
not a crash); the SQLite-file commands say what to use instead, the password hidden."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pycrdt import Doc, Text

from collab.names import DocKey
from collab.store.postgres import PostgresStore
from tests.support.cli import collab
from tests.support.ybytes import MAP_TYPE, id_parent_item, root_item, update

pytestmark = pytest.mark.anyio


def seed_deep_chain(url: str, depth: int) -> None:
    """A ``depth``-deep nested Y.Map chain, one level per update, written straight in."""
    client = 7
    rows = [update((client, 0, [root_item("r", MAP_TYPE, 7, sub="k")]))]
    for level in range(2, depth + 1):
        rows.append(
            update((client, level - 1, [id_parent_item(client, level - 2, MAP_TYPE, 7, "k")]))
        )
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO docs (room, name, generation, created_at, last_seq)"
            " VALUES (%s, %s, %s, %s, %s)",
            ("evil", "deep", uuid.uuid4().hex, time.time(), len(rows)),
        )
        conn.execute(
            "INSERT INTO doc_updates (room, name, seq, data)"
            " SELECT 'evil', 'deep', s, d FROM unnest(%s::bigint[], %s::bytea[]) AS t(s, d)",
            (list(range(1, len(rows) + 1)), rows),
        )


async def test_verify_walks_every_doc_of_a_postgresql_database(pg_url: str, tmp_path: Path) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        doc: Doc[Any] = Doc()
        for i in range(3):
            before = doc.get_state()
            doc.get("text", type=Text).insert(0, f"line {i}\n")
            await store.append(DocKey("ops", "fine"), [doc.get_update(before)])
        await store.compact(DocKey("ops", "fine"), doc.get_update(), 2)
    finally:
        await store.close()

    clean = collab("verify", "--store", pg_url, cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 docs, 1 log rows" in clean.stdout and "checked 1 docs: 0 bad" in clean.stdout
    # Written straight into the store, never indexed: the count differs, a warning.
    assert "search index: 0 messages, 0 docs, 0 tombstones" in clean.stdout
    assert "the search index holds 0 messages and 0 docs, the database 0 and 1" in clean.stdout

    seed_deep_chain(pg_url, 20_000)
    with psycopg.connect(pg_url) as conn:  # a log that ends past its head: reported too
        conn.execute("UPDATE docs SET last_seq = 2 WHERE name = 'fine'")
    bad = collab("verify", "--store", pg_url, cwd=tmp_path)
    assert bad.returncode == 3, bad.stdout + bad.stderr  # "bad doc", not a signal
    assert "checked 2 docs: 2 bad" in bad.stdout
    assert "BAD evil/deep: log seq 65: type nesting too deep" in bad.stdout
    assert "BAD ops/fine: log ends at seq 3 but docs.last_seq is 2" in bad.stdout
    report = json.loads(collab("verify", "--store", pg_url, "--json", cwd=tmp_path).stdout)
    assert not report["ok"] and report["checked"] == 2
    assert [b["doc"] for b in report["bad_docs"]] == ["deep", "fine"]
    assert report["log_rows"] == 20_001


def test_verify_without_a_path_needs_a_postgresql_store(tmp_path: Path) -> None:
    result = collab("verify", "--store", f"sqlite:///{tmp_path / 'c.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "give PATH (a backup), or a postgresql:// --store" in result.stderr


def test_verify_refuses_a_database_with_pending_migrations(
    pg_empty_url: str, tmp_path: Path
) -> None:
    result = collab("verify", "--store", pg_empty_url, cwd=tmp_path)
    assert result.returncode == 1
    assert "has pending migrations: run `collab migrate` first" in result.stderr


def test_file_commands_point_a_postgresql_store_to_its_tools(tmp_path: Path) -> None:
    url = "postgresql://app:hunter2-pg@db.example/collab"
    for command in (["backup", str(tmp_path / "b")], ["restore", str(tmp_path)], ["compact"]):
        result = collab(*command, "--store", url, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "postgresql://app:********@db.example/collab: a PostgreSQL store is backed up" in (
            result.stderr
        )
        assert "hunter2" not in result.stdout + result.stderr
    assert not (tmp_path / "b").exists()
