from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import CollabServer, ServerFactory


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``collab serve`` processes; every one is killed at teardown."""
    started: list[CollabServer] = []

    def make(**settings: Any) -> CollabServer:
        server = CollabServer(tmp_path, **settings)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
    # Every credential a test minted through the helpers is grepped for in the whole log.
    leaked = [secret[:8] + "..." for server in started for secret in server.leaked_secrets()]
    assert not leaked, f"credentials in the server log: {leaked}"


@pytest.fixture
def server(server_factory: ServerFactory) -> CollabServer:
    return server_factory()
