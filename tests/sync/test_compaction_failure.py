"""A compaction that fails (its transaction refused by PostgreSQL: here a trigger that refuses
any new snapshot, as a statement timeout on a large one would) costs nothing but the
compaction: the log stays as it was, every update stays committed and acknowledged, and the
doc's sockets stay open (collab.sync.journal). Against a real ``collab serve`` on a real
PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import anyio
import psycopg
import pytest

from tests.support.postgres import fresh_database
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory

pytestmark = pytest.mark.anyio

ROWS = 4  # compact_rows: a compaction is attempted after every few commits

REFUSE_SNAPSHOTS = """
CREATE FUNCTION refuse_snapshot() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'snapshot refused (test)';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_snapshot BEFORE UPDATE ON docs FOR EACH ROW
    WHEN (NEW.snapshot IS DISTINCT FROM OLD.snapshot) EXECUTE FUNCTION refuse_snapshot();
"""


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REFUSE_SNAPSHOTS)
        yield url


async def test_a_failed_compaction_leaves_the_doc_open(
    server_factory: ServerFactory, database: str
) -> None:
    server = server_factory(store=database, secret_key=secrets.token_urlsafe(32), compact_rows=ROWS)
    with anyio.fail_after(60):
        writer = await RawPeer.connect(server.ws_url("room", "doc"))
        for n in range(1, 4 * ROWS):
            await writer.insert(0, f"{n};")
            await writer.request_saved(n)
            await writer.wait_for(lambda n=n: writer.saved == n or writer.closed.is_set())
            assert not writer.closed.is_set(), (n, writer.close_code)
        await writer.close()
        reader = await RawPeer.connect(server.ws_url("room", "doc"))
        await reader.wait_for(lambda: str(reader.text).startswith(f"{4 * ROWS - 1};"))
        await reader.close()
    assert "compaction failed" in server.log()
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT snapshot_seq FROM docs").fetchone()
    assert row == (0,)  # nothing was folded: the trigger refused every snapshot
