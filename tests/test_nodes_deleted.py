"""A doc deleted through one real `collab serve` node while a client on another node, which has
not heard of the delete yet, keeps writing to it (issue 15).

Node C reaches Redis through a proxy of its own, blackholed just before the delete: C hears
nothing of B's announcement, and its head checks are set too slow to read the delete within
the test, so what C learns it learns from its own commit, which the store refuses (the commit
names the generation C loaded). On both stores the nodes can share (SQLite in WAL, or the
shared PostgreSQL): the doc is not brought back by C's client (not in the store, not listed by
any node), the client is closed 4404, and every write it saw "saved" was in the doc when the
delete removed it (a trigger the test installs keeps the rows the delete removes).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from pycrdt import Doc, Text
from websockets.exceptions import ConnectionClosed

from collab.db import sqlite_path
from tests.support.nodestore import store
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory
from tests.support.tcpproxy import tcp_proxy

__all__ = ["store"]  # the fixture (tests.support.nodestore)

pytestmark = pytest.mark.anyio

ROOM, DOC = "team", "notes"

_PG_KEEP = [
    "CREATE TABLE deleted_updates (room text, name text, seq bigint, data bytea)",
    "CREATE FUNCTION keep_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO deleted_updates VALUES (OLD.room, OLD.name, OLD.seq, OLD.data);"
    " RETURN OLD; END $$",
    "CREATE TRIGGER keep_deleted AFTER DELETE ON doc_updates"
    " FOR EACH ROW EXECUTE FUNCTION keep_deleted()",
]
_SQLITE_KEEP = [
    "CREATE TABLE deleted_updates (room TEXT, name TEXT, seq INTEGER, data BLOB)",
    "CREATE TRIGGER keep_deleted AFTER DELETE ON doc_updates BEGIN"
    " INSERT INTO deleted_updates VALUES (old.room, old.name, old.seq, old.data); END",
]


def run_sql(store_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on the nodes' store, committed; its rows."""
    if store_url.startswith("postgresql://"):
        with psycopg.connect(store_url, autocommit=True, connect_timeout=5) as pg:
            cur = pg.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []
    path = sqlite_path(store_url)
    assert path is not None
    conn = sqlite3.connect(path, timeout=10)
    try:
        with conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    finally:
        conn.close()


def keep_deleted_rows(store_url: str) -> None:
    """From now on every row deleted from ``doc_updates`` is copied to ``deleted_updates``."""
    for sql in _PG_KEEP if store_url.startswith("postgresql://") else _SQLITE_KEEP:
        run_sql(store_url, sql)


def deleted_text(store_url: str) -> str:
    """The text of the doc as the delete removed it (no compaction here: every row)."""
    doc: Doc[Any] = Doc()
    for (data,) in run_sql(
        store_url,
        "SELECT data FROM deleted_updates WHERE room = %s AND name = %s ORDER BY seq",
        (ROOM, DOC),
    ):
        doc.apply_update(bytes(data))
    return str(doc.get("text", type=Text))


async def keep_writing(writer: RawPeer, written: list[str]) -> None:
    """A token and a "saved" request every 20 ms until the socket closes: a person typing who
    has not heard of the delete. ``written``: the tokens sent, in order."""
    with contextlib.suppress(ConnectionClosed):
        while not writer.closed.is_set():
            written.append(f"w{len(written) + 1};")
            await writer.insert(len(str(writer.text)), written[-1])
            await writer.request_saved(len(written))
            await anyio.sleep(0.02)  # the scenario: typing, not a flood


async def listed(server: CollabServer) -> list[str]:
    headers = {"authorization": f"Bearer {server.dev_token}"}
    async with httpx.AsyncClient(base_url=server.http_url + "/api/v1", headers=headers) as http:
        response = await http.get(f"/rooms/{ROOM}/docs")
    assert response.status_code == 200
    return [doc["name"] for doc in response.json()["items"]]


async def test_a_writer_on_a_node_that_missed_the_delete_does_not_bring_the_doc_back(
    store: dict[str, Any], nodes: NodesFactory, private_redis: PrivateRedis
) -> None:
    common = {"dev_token": f"test-dev-token-deleted-{private_redis.port}", "compact_rows": 100_000}
    with tcp_proxy(private_redis.port) as proxy:
        (b,) = nodes(1, fanout=private_redis.url, **common, **store)
        (c,) = nodes(
            1,
            fanout=f"redis://127.0.0.1:{proxy.port}/0",
            head_poll_interval=60,
            head_poll_degraded=60,
            **common,
            **store,
        )
        keep_deleted_rows(b.store)
        writer = await RawPeer.connect(c.ws_url(ROOM, DOC, "collab=1"))  # creates the room
        written: list[str] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_writing, writer, written)
                await writer.wait_for(lambda: writer.saved >= 5)
                proxy.blackhole()  # C hears nothing more through Redis, and cannot tell yet
                headers = {"authorization": f"Bearer {b.dev_token}"}
                sent_before_delete = len(written)  # the delete starts now
                async with httpx.AsyncClient(base_url=b.http_url + "/api/v1", headers=headers) as h:
                    assert (await h.delete(f"/rooms/{ROOM}/docs/{DOC}")).status_code == 204
                with anyio.fail_after(10):
                    await writer.closed.wait()
        finally:
            await writer.close()
    assert writer.close_code == 4404
    assert len(written) > sent_before_delete  # it kept writing once the delete began
    assert run_sql(b.store, "SELECT count(*) FROM docs WHERE room = %s", (ROOM,)) == [(0,)]
    assert run_sql(b.store, "SELECT count(*) FROM doc_updates WHERE room = %s", (ROOM,)) == [(0,)]
    assert await listed(b) == [] and await listed(c) == []
    # No acknowledged write was lost: each was in the doc when the delete removed it.
    removed = deleted_text(b.store)
    acknowledged = written[: writer.saved]
    assert len(acknowledged) >= 5
    assert [token for token in acknowledged if token not in removed] == []
