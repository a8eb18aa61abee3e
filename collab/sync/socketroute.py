"""``SocketRoutes``: a WebSocket handshake whose path one of its routes matches goes straight
to that route's endpoint, past the middleware and the router inside it.

A socket lives for hours, and every ASGI layer it passes keeps a suspended frame (and
Starlette's exception wrappers a few closures) for as long: past this middleware a socket
skips Starlette's ExceptionMiddleware, its router and the route's session wrapper, about 4 KB
of every open socket. Nothing they do applies to collab's sockets: the endpoint raises none of
Starlette's HTTP or WebSocket exceptions (it closes with its own codes), so an error still
reaches the server as before, and the path parameters are the route's own match. Everything
outside this middleware (the Host check, the socket metrics) still sees every socket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

from starlette.routing import Match, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket


class SocketRoutes:
    """Pure ASGI; ``routes`` are also the app's own (HTTP never takes this path)."""

    def __init__(self, app: ASGIApp, routes: Sequence[WebSocketRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine: the awaitable returned is the endpoint's (or the inner app's), so
        # this layer keeps no frame of its own for the socket's lifetime.
        if scope["type"] == "websocket":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    endpoint = route.endpoint
                    result: Awaitable[None] = endpoint(WebSocket(scope, receive, send))
                    return result
        return self.app(scope, receive, send)
