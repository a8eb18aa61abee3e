"""The PostgreSQL index when PostgreSQL fails under it: a write batch whose session is killed
(a restart, a failover, ``pg_terminate_backend``) is written again, not lost."""

from __future__ import annotations

import psycopg
import pytest

from collab.search.postgres import LOCK_CLASS, WRITE_LOCK
from tests.api.conftest import Api
from tests.support.postgres import sessions_waiting
from tests.support.server import ServerFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio


async def test_a_batch_whose_session_was_killed_is_written_again(
    pg_url: str, server_factory: ServerFactory
) -> None:
    """A post and a deletion whose index batch loses its PostgreSQL session: the batch used to
    be dropped (logged, "writes lost"), so the new message was never found and the deleted
    one was found by its text until a rebuild; versioned writes are safe to write again."""
    server = server_factory(
        store=pg_url,
        secret_key="k" * 43,
        dev_token="pgfault-dev-token-0123",
        search_index_delay=0.05,
        search_burst=10_000,
    )
    api = Api(server)
    try:
        room = api.room("r", owner=api.dev)

        def found(q: str) -> list[str]:
            r = api.dev.http.get("/search", params={"q": q})
            assert r.status_code == 200, r.text
            return [item["message"] for item in r.json()["items"]]

        def post(text: str, client_id: str) -> str:
            r = api.dev.http.post(
                f"/rooms/{room}/messages", json={"text": text, "client_id": client_id}
            )
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        first = post("the alpha release", "c1")
        await wait_until(lambda: found("alpha") == [first], what="the first post")
        async with await psycopg.AsyncConnection.connect(pg_url) as holder:
            # The index's write lock, held here: the next batch waits for it, in its session.
            await holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, WRITE_LOCK))
            second = post("the bravo release", "c2")
            deleted = api.dev.http.delete(f"/rooms/{room}/messages/{first}")
            assert deleted.status_code == 204, deleted.text
            await wait_until(sessions_waiting(pg_url, 1), what="the batch waiting for the lock")
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as killer:
                cur = await killer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                assert [row[0] for row in await cur.fetchall()] == [True]
            await holder.commit()
        await wait_until(lambda: found("bravo") == [second], what="the post of the killed batch")
        await wait_until(lambda: found("alpha") == [], what="the deletion of the killed batch")
    finally:
        api.close()
