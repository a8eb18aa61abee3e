"""``SocketRoutes``: a matched socket reaches its endpoint with the route's path parameters and
skips the layers inside; any other socket, and every HTTP request, goes through them."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from collab.sync.socketroute import SocketRoutes


class Inside:
    """A layer inside SocketRoutes that records every scope passing it."""

    seen: list[tuple[str, str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        Inside.seen.append((scope["type"], scope.get("path", "")))
        await self.app(scope, receive, send)


async def echo_rest(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.path_params["rest"])
    await websocket.close()


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture
def client() -> TestClient:
    Inside.seen = []
    sockets = WebSocketRoute("/ws/{rest:path}", echo_rest)
    app = Starlette(
        routes=[Route("/hello", hello), sockets],
        middleware=[Middleware(SocketRoutes, routes=[sockets]), Middleware(Inside)],
    )
    return TestClient(app)


def test_a_matched_socket_reaches_its_endpoint_past_the_inner_layers(client: TestClient) -> None:
    with client.websocket_connect("/ws/room-1/doc/with/slashes") as ws:
        assert ws.receive_text() == "room-1/doc/with/slashes"
    assert Inside.seen == []


def test_another_socket_and_http_go_through_the_inner_layers(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/elsewhere"):
        pass  # the router refuses a path no route has
    assert client.get("/hello").text == "hello"
    assert Inside.seen == [("websocket", "/elsewhere"), ("http", "/hello")]
