"""Quota refusals are counted from the error's Quota where they are answered, HTTP and socket.

In process: the app under Starlette's TestClient with a memory store, so the counters are read
straight from its ``Metrics`` (no scrape, no server process).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from collab.app import create_app
from collab.errors import DocTooLarge, Forbidden, LimitReached, Quota
from collab.metrics import Metrics
from collab.services import Services
from collab.settings import Settings


def count(metrics: Metrics, quota: Quota) -> float:
    value = metrics.registry.get_sample_value("collab_quota_refusals_total", {"quota": quota.value})
    return value or 0.0


def test_refusal_counts_only_errors_that_carry_a_quota() -> None:
    metrics = Metrics()
    metrics.refusal(DocTooLarge())
    metrics.refusal(LimitReached(Quota.docs_per_room, "document limit of this room reached"))
    metrics.refusal(LimitReached(Quota.docs_per_room))
    metrics.refusal(Forbidden("room limit reached"))  # the text alone counts nothing
    metrics.refusal(ValueError("not ours"))
    assert count(metrics, Quota.doc_size) == 1
    assert count(metrics, Quota.docs_per_room) == 2
    assert count(metrics, Quota.rooms_per_user) == 0


def test_closes_are_not_counted_as_quotas_by_their_reason() -> None:
    metrics = Metrics()
    metrics.closed(4403, by_server=True)
    metrics.closed(4413, by_server=True)
    assert all(count(metrics, quota) == 0 for quota in Quota)


@pytest.fixture
def app_client() -> Iterator[tuple[TestClient, Services]]:
    settings = Settings(store="memory://", max_rooms_per_user=1, dev_token="dev-token-for-tests")
    app = create_app(settings)
    shared: Services = app.state.services
    # A loopback name: dev mode serves no other Host (TestClient says "testserver").
    with TestClient(app, base_url="http://localhost") as client:
        client.headers["authorization"] = f"Bearer {shared.dev_token}"
        yield client, shared


def test_http_refusal_at_the_room_cap_is_counted(
    app_client: tuple[TestClient, Services],
) -> None:
    client, shared = app_client
    assert client.post("/api/v1/rooms", json={"id": "first"}).status_code == 201
    refused = client.post("/api/v1/rooms", json={"id": "second"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "limit_reached"
    assert count(shared.metrics, Quota.rooms_per_user) == 1
    assert client.post("/api/v1/rooms", json={"id": "bad name!"}).status_code == 400
    assert count(shared.metrics, Quota.rooms_per_user) == 1  # other refusals count nothing


def test_socket_refusal_at_the_room_cap_is_counted(
    app_client: tuple[TestClient, Services],
) -> None:
    client, shared = app_client
    assert client.post("/api/v1/rooms", json={"id": "mine"}).status_code == 201
    token = shared.dev_token
    with client.websocket_connect(f"ws://localhost/ws/other/doc?token={token}") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 4403 and closed.value.reason == "room limit reached"
    assert count(shared.metrics, Quota.rooms_per_user) == 1
