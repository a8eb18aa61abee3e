from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import CollabServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[CollabServer]]:
    """Start ``collab serve`` processes; every one is killed at teardown."""
    started: list[CollabServer] = []

    def make(**settings: object) -> CollabServer:
        server = CollabServer(tmp_path, **settings)  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.stop()
    # Every credential a test minted through the helpers is grepped for in the whole log.
    leaked = [secret[:8] + "..." for server in started for secret in server.leaked_secrets()]
    assert not leaked, f"credentials in the server log: {leaked}"


@pytest.fixture
def server(server_factory: type[CollabServer]) -> CollabServer:
    return server_factory()
