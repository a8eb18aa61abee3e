from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import CollabServer


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


@pytest.fixture
def server(server_factory: type[CollabServer]) -> CollabServer:
    return server_factory()
