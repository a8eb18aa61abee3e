"""Many requests at once against real servers: what a cap checked by counting, then writing,
lets through. ``racing_servers`` starts the servers of one store (memory, SQLite, or two nodes
on one PostgreSQL database: a cap there must hold across nodes); ``race`` sends the requests,
spread over them, all in flight at once."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from tests.support.server import CollabServer, NodesFactory, ServerFactory

STORES = ["memory", "sqlite", "postgresql"]


def racing_servers(
    request: pytest.FixtureRequest, kind: str, **settings: Any
) -> list[CollabServer]:
    """One server on ``kind``'s store, or two nodes sharing a PostgreSQL database. Creation
    rates are lifted: only the cap under test may refuse."""
    settings = {"api_create_burst": 1000, **settings}
    if kind == "postgresql":
        nodes: NodesFactory = request.getfixturevalue("nodes")
        return nodes(2, store=request.getfixturevalue("pg_url"), **settings)
    factory: ServerFactory = request.getfixturevalue("server_factory")
    return [factory(**({"store": "memory://"} if kind == "memory" else {}), **settings)]


async def race(
    servers: list[CollabServer], token: str, method: str, calls: list[tuple[str, Any]]
) -> list[httpx.Response]:
    """Each (path under /api/v1, JSON body) of ``calls`` as one request presenting ``token``,
    round-robin over ``servers``, all started together; the answers in ``calls``' order."""
    answers: list[httpx.Response | None] = [None] * len(calls)
    limits = httpx.Limits(max_connections=len(calls))
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=20, limits=limits) as http:

        async def send(index: int, path: str, body: Any) -> None:
            base = servers[index % len(servers)].http_url
            answers[index] = await http.request(method, f"{base}/api/v1{path}", json=body)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for index, (path, body) in enumerate(calls):
                    tasks.start_soon(send, index, path, body)
    return [answer for answer in answers if answer is not None]
