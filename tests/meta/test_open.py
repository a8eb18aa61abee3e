"""Opening by URL: one store URL names the documents and the meta store; each kind works alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from collab.db import Database, StoreError, migrate_with_backup
from collab.meta import Users, open_meta_store
from collab.meta.memory import MemoryMetaStore
from collab.meta.memory.base import Tables
from collab.meta.memory.users import MemoryUsers
from collab.meta.postgres import PostgresMetaStore
from collab.meta.sql.users import SqlUsers
from collab.meta.sqlite import SQLiteMetaStore
from collab.meta.sqlite.base import SQLiteBackend
from collab.names import DocKey
from collab.store import open_store
from tests.meta.support import T0, Clock, add_user

pytestmark = pytest.mark.anyio


async def test_one_store_url_names_documents_and_meta(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'collab.db'}"
    migrate_with_backup(tmp_path / "data" / "collab.db")
    docs, meta = open_store(url), open_meta_store(url)
    assert isinstance(meta, SQLiteMetaStore) and meta.path == tmp_path / "data" / "collab.db"
    await docs.open()
    await meta.open()
    try:
        await meta.create_room("r", "R", "u1")
        assert await docs.append(DocKey("r", "notes"), [b"x"]) == 1
        assert (await meta.get_room("r")) is not None
    finally:
        await meta.close()
        await docs.close()


def test_meta_store_urls() -> None:
    assert isinstance(open_meta_store("memory://"), MemoryMetaStore)
    relative = open_meta_store("sqlite:///./data/collab.db", synchronous="NORMAL")
    assert isinstance(relative, SQLiteMetaStore)
    assert relative.path == Path("data/collab.db") and relative.synchronous == "NORMAL"
    assert isinstance(open_meta_store("/tmp/x.db"), SQLiteMetaStore)
    for url in ("postgresql://u@db.example/collab", "postgres://db.example/collab"):
        remote = open_meta_store(url)  # not opened: nothing is reached yet
        assert isinstance(remote, PostgresMetaStore) and remote.url == url
    with pytest.raises(StoreError, match="unknown store scheme 'mysql'"):
        open_meta_store("mysql://db.example/collab")
    with pytest.raises(StoreError):
        open_meta_store("sqlite://host/x.db")


async def test_each_kind_works_alone_over_its_backend(tmp_path: Path, clock: Clock) -> None:
    """A consumer that needs one kind can be given just that kind's implementation."""
    migrate_with_backup(tmp_path / "c.db")
    db = Database(tmp_path / "c.db")
    await db.open()
    try:
        kinds: list[Users] = [
            MemoryUsers(Tables(), clock=clock),
            SqlUsers(SQLiteBackend(db), clock=clock),
        ]
        for users in kinds:
            user_id = await add_user(users, "solo")
            assert (user := await users.get_user(user_id)) is not None
            assert (user.subject, user.created_at) == ("solo", T0)
    finally:
        await db.close()
