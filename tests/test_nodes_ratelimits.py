"""Rate limits across real `collab serve` nodes (issue 15: "rate limits (per user and address
across nodes, in Redis)").

A client that spreads its requests over every node behind the balancer gets the configured
rate once, not once per node: the limits per user (the API's chat writes here) and per client
address (WebSocket handshakes, logins, failed credentials) spend one bucket in Redis, whichever
node answers. Every 429 carries ``Retry-After``. With Redis killed, each node limits on its own
(requests are still served, never unlimited) and counts it in
``collab_fanout_rate_fallbacks_total``; once Redis is back, the buckets are shared again.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.nodestore import fanout_settings, store
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

__all__ = ["store"]  # the fixture (tests.support.nodestore)

pytestmark = pytest.mark.anyio

ROOM = "team"
SLOW = 0.01  # tokens per second: nothing refills while a test runs
_addresses = itertools.count(1)


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    yield from fanout_settings()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def as_dev(server: CollabServer) -> dict[str, str]:
    return {"authorization": f"Bearer {server.dev_token}"}


async def post(http: httpx.AsyncClient, server: CollabServer, text: str) -> httpx.Response:
    body = {"text": text, "client_id": text}
    url = f"{server.http_url}/api/v1/rooms/{ROOM}/messages"
    return await http.post(url, json=body, headers=as_dev(server))


async def posts_round_robin(
    http: httpx.AsyncClient, servers: list[CollabServer], count: int, tag: str
) -> list[httpx.Response]:
    """``count`` posts by the dev user, node after node."""
    return [await post(http, servers[i % len(servers)], f"{tag}{i}") for i in range(count)]


def assert_refused(answer: httpx.Response) -> None:
    """A 429 with a Retry-After of whole seconds, as much as the bucket needs (100 s a token)."""
    assert answer.status_code == 429, answer.text
    assert 1 <= int(answer.headers["retry-after"]) <= 101


async def counter(http: httpx.AsyncClient, server: CollabServer, name: str) -> float:
    text = (await http.get(server.http_url + "/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return float(family.samples[0].value)
    raise AssertionError(f"{name} is not in /metrics")


async def test_a_user_spread_over_three_nodes_gets_the_chat_rate_once(
    store: dict[str, Any], nodes: NodesFactory, shared: dict[str, Any], http: httpx.AsyncClient
) -> None:
    servers = nodes(3, **shared, **store, chat_write_rate=SLOW, chat_write_burst=6)
    made = await http.post(
        servers[0].http_url + "/api/v1/rooms", json={"id": ROOM}, headers=as_dev(servers[0])
    )
    assert made.status_code == 201, made.text
    with anyio.fail_after(60):
        answers = await posts_round_robin(http, servers, 18, "m")
    statuses = [answer.status_code for answer in answers]
    assert statuses == [201] * 6 + [429] * 12  # per node it would have been 18 x 201
    for answer in answers[6:]:
        assert_refused(answer)
        assert answer.json()["error"]["code"] == "rate_limited"
    for server in servers:
        assert await counter(http, server, "collab_fanout_rate_checks") >= 6
        assert await counter(http, server, "collab_fanout_rate_fallbacks") == 0


async def test_an_address_spread_over_three_nodes_gets_its_limits_once(
    nodes: NodesFactory, shared: dict[str, Any], http: httpx.AsyncClient
) -> None:
    a, b, c = servers = nodes(
        3,
        **shared,
        handshake_rate=SLOW,
        handshake_burst=4,
        login_rate=SLOW,
        login_burst=2,
        auth_failure_rate=SLOW,
        auth_failure_burst=3,
    )
    client = {"X-Forwarded-For": "203.0.113.7"}  # the real address behind a trusted proxy
    with anyio.fail_after(60):
        # Handshakes: 4 in all, then 429 before accept, on every node.
        for server in (a, b, c, a):
            async with connect(server.ws_url("rl", "d"), additional_headers=client):
                pass
        for server in (b, c):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(server.ws_url("rl", "d"), additional_headers=client):
                    pass
            assert refused.value.response.status_code == 429
            assert int(refused.value.response.headers["retry-after"]) >= 1
        other = {"X-Forwarded-For": "203.0.113.8"}  # another client: its own budget
        async with connect(c.ws_url("rl", "d"), additional_headers=other):
            pass
        # Logins: 2 in all.
        logins = [
            await http.get(s.http_url + "/login", params={"token": "x"}, headers=client)
            for s in servers
        ]
        assert 429 not in [r.status_code for r in logins[:2]]
        assert_refused(logins[2])
        # Failed credentials: 3 in all; then every credential from there is refused unchecked.
        guesser = {"X-Forwarded-For": "198.51.100.7"}
        guesses = [
            await http.get(
                s.http_url + "/api/v1/me",
                headers={**guesser, "authorization": f"Bearer guess-{i}-of-a-token"},
            )
            for i, s in enumerate([a, b, c, a, b, c])
        ]
        assert [r.status_code for r in guesses] == [401] * 3 + [429] * 3
        for answer in guesses[3:]:
            assert_refused(answer)
        for server in servers:
            right = await http.get(
                server.http_url + "/api/v1/me", headers={**guesser, **as_dev(server)}
            )
            assert right.status_code == 429


async def test_with_redis_killed_each_node_limits_alone_then_they_share_again(
    nodes: NodesFactory, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        servers = nodes(2, fanout=redis.url, chat_write_rate=SLOW, chat_write_burst=3)
        a = servers[0]
        made = await http.post(a.http_url + "/api/v1/rooms", json={"id": ROOM}, headers=as_dev(a))
        assert made.status_code == 201, made.text
        with anyio.fail_after(60):
            shared = await posts_round_robin(http, servers, 4, "s")
        assert [r.status_code for r in shared] == [201, 201, 201, 429]

        redis.kill()
        with anyio.fail_after(60):
            alone = {
                server.port: await posts_round_robin(http, [server], 4, f"k{server.port}-")
                for server in servers
            }
        for answers in alone.values():  # served, each node's own burst, never unlimited
            assert [r.status_code for r in answers] == [201, 201, 201, 429]
            assert_refused(answers[3])
        checks = {}
        for server in servers:
            assert await counter(http, server, "collab_fanout_rate_fallbacks") >= 4
            checks[server.port] = await counter(http, server, "collab_fanout_rate_checks")

        redis.start()  # empty: the shared buckets start full

        async def shared_again() -> bool:
            """A login per node from a fresh address (it spends a token of its own) until
            every node's checks go through Redis again."""
            for server in servers:
                address = {"X-Forwarded-For": f"192.0.2.{next(_addresses) % 250 + 1}"}
                await http.get(server.http_url + "/login", headers=address)
            counts = [await counter(http, s, "collab_fanout_rate_checks") for s in servers]
            return all(n > checks[s.port] for n, s in zip(counts, servers, strict=True))

        await wait_until(shared_again, 30, interval=0.2)
        with anyio.fail_after(60):
            again = await posts_round_robin(http, servers, 4, "r")
        assert [r.status_code for r in again] == [201, 201, 201, 429]
    finally:
        redis.stop()
