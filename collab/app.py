"""create_app(settings): routes, middleware, lifespan, wiring. No logic lives here.

Everything the routes share is one typed ``Services`` on ``app.state.services``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from collab.api.routes import api_routes
from collab.auth.hosts import HostCheck
from collab.db import StoreError
from collab.login.middleware import LoginSessionMiddleware
from collab.login.routes import login_routes
from collab.metrics import SocketObserver, metrics_endpoint
from collab.services import Services, services
from collab.settings import Settings
from collab.sync.endpoint import websocket_endpoint
from collab.sync.socketroute import SocketRoutes
from collab.web.bundle import Manifest, read_manifest
from collab.web.routes import web_routes

log = logging.getLogger("collab.app")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Whether the store answers. Anyone may ask (balancers probe it), so the failure's detail
    (paths, SQLite's words) goes to the log, never into the answer, and a success tells nothing
    of the node's activity (how many docs are loaded is /metrics', which a token may protect)."""
    found = services(request)
    try:
        await found.store.ping()
    except StoreError:
        log.warning("not ready: the store does not answer", exc_info=True)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(settings: Settings | None = None, bundle: Manifest | None = None) -> Starlette:
    """The app; ``bundle`` is the workspace to serve (``collab serve`` checks and builds it
    first), else whatever bundle is built beside the package."""
    settings = settings or Settings.from_env()
    shared = Services.create(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await shared.open()
        try:
            yield
        finally:
            await shared.close()

    # metrics_port set: /metrics is served there only (collab serve starts that server).
    metrics_routes: list[BaseRoute] = []
    if not settings.metrics_port:
        endpoint = metrics_endpoint(shared.metrics, settings.metrics_token)
        metrics_routes.append(Route("/metrics", endpoint))
    sockets = WebSocketRoute("/ws/{rest:path}", websocket_endpoint)
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *metrics_routes,
            sockets,
            Mount("/api/v1", routes=api_routes()),
            *login_routes(),
            *web_routes(bundle or read_manifest()),
        ],
        middleware=[
            Middleware(HostCheck, settings=settings),  # first: a foreign Host reaches nothing
            Middleware(SocketObserver, metrics=shared.metrics),
            Middleware(SocketRoutes, routes=[sockets]),  # a socket skips the layers below
            Middleware(LoginSessionMiddleware, services=shared),
        ],
        lifespan=lifespan,
    )
    app.state.services = shared
    return app
