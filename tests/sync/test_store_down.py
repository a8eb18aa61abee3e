"""A store that does not answer (PostgreSQL down or restarting) under a socket, in-process:
the handshake is refused with HTTP 503 before accept, a join after accept is closed with 1011
as a failed load is, the doc it reached for is released, and each is one warning in the log,
never an exception out of the app (issue 15, item 5; the real crash:
tests/test_nodes_postgres_faults.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from collab.app import create_app
from collab.db import StoreError
from collab.names import DocKey
from collab.services import Services
from collab.settings import Settings


@pytest.fixture
def app_client() -> Iterator[tuple[TestClient, Services]]:
    app = create_app(Settings(store="memory://", dev_token="dev-token-for-tests"))
    shared: Services = app.state.services
    # A loopback name: dev mode serves no other Host (TestClient says "testserver").
    with TestClient(app, base_url="http://localhost") as client:
        yield client, shared


async def down(*args: object, **kwargs: object) -> None:
    raise StoreError("postgresql://collab@db/collab: connection refused")


def url(shared: Services) -> str:
    return f"ws://localhost/ws/r/d?token={shared.dev_token}"


def test_a_handshake_the_store_cannot_authenticate_is_refused_with_503(
    app_client: tuple[TestClient, Services],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, shared = app_client
    monkeypatch.setattr(shared.meta, "get_user", down)  # the credential's user: not found out
    with caplog.at_level("WARNING", logger="collab.endpoint"):
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect(url(shared)):
                pass
    assert refused.value.status_code == 503
    assert "handshake refused: the store does not answer" in caplog.text


@pytest.mark.parametrize("failing", ["get_room", "list_docs"])
def test_a_join_the_store_cannot_answer_is_closed_1011_and_releases_the_doc(
    app_client: tuple[TestClient, Services],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failing: str,
) -> None:
    """``get_room``: the room's role, before the doc is acquired; ``list_docs``: the quota
    check of a new doc, after it was (it must be released, or it never leaves memory)."""
    client, shared = app_client
    owner = shared.meta if failing == "get_room" else shared.store
    monkeypatch.setattr(owner, failing, down)
    with caplog.at_level("WARNING", logger="collab.endpoint"):
        with client.websocket_connect(url(shared)) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes()
    assert closed.value.code == 1011
    assert "could not open r/d: the store does not answer" in caplog.text
    live = shared.registry.get(DocKey("r", "d"))
    assert live is None or live.refs == 0
