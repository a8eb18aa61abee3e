from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import fresh_database
from tests.support.redisserver import PrivateRedis
from tests.support.server import CollabServer, NodesFactory, ServerFactory, start_nodes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--timing",
        choices=("all", "skip", "only"),
        default="all",
        help="run the tests marked `timing` with the rest (all), not at all (skip), or alone "
        "(only): scripts/test runs them in a pass of their own, untraced by coverage",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    choice = config.getoption("--timing")
    if choice == "all":
        return
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        timing = item.get_closest_marker("timing") is not None
        (selected if timing == (choice == "only") else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``collab serve`` processes; every one is stopped at teardown."""
    started: list[CollabServer] = []

    def make(**settings: Any) -> CollabServer:
        server = CollabServer(tmp_path, **settings)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
    # Every credential a test minted through the helpers is grepped for in the whole log, at
    # whatever --log-level the test chose; and the dev token every request presents, which
    # may appear only in the login URL dev mode prints on stdout.
    leaked = [secret[:8] + "..." for server in started for secret in server.leaked_secrets()]
    leaked += ["dev token" for server in started if dev_token_leaked(server)]
    assert not leaked, f"credentials in the server log: {leaked}"


def dev_token_leaked(server: CollabServer) -> bool:
    """Whether the dev token is in a log line other than the printed login URL."""
    return any(
        server.dev_token in line and not line.strip().endswith(f"/login?token={server.dev_token}")
        for line in server.log().splitlines()
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[NodesFactory]:
    """Start several ``collab serve`` on one store (``start_nodes``); all stopped at teardown,
    their logs checked for credentials like ``server_factory``'s."""
    started: list[CollabServer] = []

    def make(count: int, **settings: Any) -> list[CollabServer]:
        made = start_nodes(tmp_path, count, **settings)
        started.extend(made)
        return made

    yield make
    for server in started:
        server.stop()
    leaked = [secret[:8] + "..." for server in started for secret in server.leaked_secrets()]
    leaked += ["dev token" for server in started if dev_token_leaked(server)]
    assert not leaked, f"credentials in the server log: {leaked}"


@pytest.fixture
def server(server_factory: ServerFactory) -> CollabServer:
    return server_factory()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database with collab's migrations applied, dropped after the test
    (skipped without a server, failing under CI=true: tests/support/postgres.py)."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A fresh PostgreSQL database with nothing applied, dropped after the test."""
    with fresh_database(migrated=False) as url:
        yield url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A ``redis-server`` of this test's own (no persistence), which it may kill or pause."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()
