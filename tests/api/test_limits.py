"""Per-user rates of creating things, and the purge (issue 8, item 10).

Every OPERATIONS row that creates something names its kind; each kind has its own bucket per
user: past it a 429 with ``Retry-After``, counted in ``collab_api_rate_limited_total``. The
purge deletes used or expired invites, dead sessions and tickets, and old audit rows, from the
server's periodic task and from ``collab purge``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collab.api.routes import OPERATIONS
from collab.errors import Rate
from collab.meta import AuditEvent, MetaStore, Role
from tests.api.conftest import Api, assert_error
from tests.support.server import CollabServer


def _limited(server: CollabServer, kind: str) -> float:
    text = httpx.get(server.http_url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "collab_api_rate_limited_total" and sample.labels == {"kind": kind}:
                return float(sample.value)
    return 0.0


def test_every_creating_route_has_a_rate() -> None:
    creating = {(op.path, op.method): op.rate for op in OPERATIONS if op.method == "POST"}
    assert creating["/rooms", "POST"] == Rate.rooms
    assert creating["/tokens", "POST"] == Rate.api_tokens
    assert creating["/rooms/{room}/tokens", "POST"] == Rate.room_tokens
    assert creating["/rooms/{room}/tickets", "POST"] == Rate.tickets
    assert creating["/rooms/{room}/invites", "POST"] == Rate.invites
    assert creating["/rooms/{room}/members", "POST"] == Rate.members
    assert {op.rate for op in OPERATIONS if op.rate} == set(Rate)


def test_minting_past_the_rate_is_429_with_retry_after(
    server_factory: Callable[..., CollabServer],
) -> None:
    """300 personal tokens in 0.6 s was the review's finding: now the burst, then 429."""
    server = server_factory(api_create_burst=5, api_create_rate=0.05)
    api = Api(server)
    try:
        alice, bob = api.user("alice"), api.user("bob")
        statuses = [
            alice.http.post("/tokens", json={"name": f"t{i}"}).status_code for i in range(8)
        ]
        assert statuses == [201] * 5 + [429] * 3
        refused = alice.http.post("/tokens", json={"name": "again"})
        assert_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        assert len(alice.http.get("/tokens").json()["items"]) == 1 + 5  # the helper's, then 5
        assert _limited(server, "api_tokens") == 4
        # Another kind, and another user, have buckets of their own.
        assert alice.http.post("/rooms", json={"id": "a1"}).status_code == 201
        assert bob.http.post("/tokens", json={"name": "b"}).status_code == 201
        for i in range(4):
            assert alice.http.post("/rooms/a1/invites", json={}).status_code == 201, i
        assert alice.http.post("/rooms/a1/invites", json={}).status_code == 201
        assert_error(alice.http.post("/rooms/a1/invites", json={}), 429, "rate_limited")
        assert _limited(server, "invites") == 1
        flood = [
            alice.http.post(
                "/rooms/a1/members", json={"email": f"x{i}@example.com", "role": "viewer"}
            )
            for i in range(20)
        ]
        assert [r.status_code for r in flood] == [202] * 5 + [429] * 15
        assert len(alice.http.get("/rooms/a1/invites").json()["items"]) == 5 + 5
    finally:
        api.close()


def _seed_dead_rows(server: CollabServer, user_id: str) -> None:
    async def seed(meta: MetaStore) -> None:
        await meta.create_invite("p", Role.viewer, user_id, ttl=-1)
        await meta.create_session(user_id, ttl=-1)
        await meta.create_ticket(user_id, "p", None, None, ttl=-1)
        old = time.time() - 400 * 24 * 3600
        await meta.record(AuditEvent(at=old, action="ancient", room_id="p"))

    server.with_meta(seed)


def _dead_rows(server: CollabServer) -> int:
    async def count(meta: MetaStore) -> int:
        audit = await meta.list_audit(room_id="p", limit=100)
        invites = await meta.list_invites("p")
        return sum(e.action == "ancient" for e in audit) + sum(
            i.status(time.time()) == "expired" for i in invites
        )

    return server.with_meta(count)


def test_the_server_purges_on_its_own(server_factory: Callable[..., CollabServer]) -> None:
    server = server_factory(purge_interval=0.2)
    api = Api(server)
    try:
        alice = api.user("alice")
        api.room("p", owner=alice)
        _seed_dead_rows(server, alice.user_id)
        deadline = time.monotonic() + 20
        while _dead_rows(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _dead_rows(server) == 0
        assert alice.http.get("/rooms/p/audit").json()["items"], "recent rows stay"
        assert "purged" in server.log()
    finally:
        api.close()


def test_collab_purge_command(server_factory: Callable[..., CollabServer]) -> None:
    server = server_factory(purge_interval=0)
    api = Api(server)
    try:
        alice = api.user("alice")
        api.room("p", owner=alice)
        _seed_dead_rows(server, alice.user_id)
        assert _dead_rows(server) == 2
        env = {**os.environ, "COLLAB_STORE": server.store, "COLLAB_AUDIT_RETENTION": "86400"}
        done = subprocess.run(
            [sys.executable, "-m", "collab", "purge"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "purged 1 invites, 1 sessions, 1 tickets" in done.stdout
        assert ", 1 audit rows" in done.stdout
        assert _dead_rows(server) == 0
    finally:
        api.close()
