"""create_app(settings): routes, lifespan, wiring. No logic lives here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from collab.endpoint import websocket_endpoint
from collab.rooms import RoomRegistry
from collab.settings import Settings
from collab.store import StoreError, open_store, sqlite_path

log = logging.getLogger("collab.app")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.store.ping()
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "rooms_loaded": len(request.app.state.registry)})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        path = sqlite_path(settings.store)
        if path is not None:
            from collab.store.sqlite import migrate_with_backup

            applied = await anyio.to_thread.run_sync(migrate_with_backup, path)
            for name in applied:
                log.info("applied migration %s to %s", name, path)
        store = open_store(settings.store, synchronous=settings.sqlite_synchronous)
        await store.open()
        registry = RoomRegistry(store, settings)
        app.state.store = store
        app.state.registry = registry
        try:
            yield
        finally:
            # uvicorn has closed every socket (1012) by now: wait for the last commit.
            await registry.close()
            await store.close()
            log.info("store closed")

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            WebSocketRoute("/ws/{rest:path}", websocket_endpoint),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    return app
