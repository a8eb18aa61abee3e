"""create_app(settings): routes, lifespan, wiring. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute

from collab import __version__
from collab.api import api_routes
from collab.auth.devmode import ensure_dev_user, is_dev_mode, resolve_dev_token
from collab.auth.keys import load_secret_keys
from collab.auth.routes import LoginSessionMiddleware, auth_routes
from collab.db import StoreError, sqlite_path
from collab.endpoint import websocket_endpoint
from collab.limits import ConnectionLimits, LoopLag
from collab.meta import AuditEvent, MetaStore, open_meta_store
from collab.metrics import Metrics, SocketObserver, metrics_endpoint
from collab.peer import Peer
from collab.ratelimit import RateLimiter
from collab.room import Room
from collab.rooms import RoomRegistry
from collab.settings import Settings
from collab.store import open_store

log = logging.getLogger("collab.app")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.store.ping()
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "rooms_loaded": len(request.app.state.registry)})


def _audit_refused_write(meta: MetaStore) -> Callable[[Room, Peer], None]:
    """Refused writes are audited once per socket (the first one; later ones are counted)."""
    pending: set[asyncio.Task[None]] = set()

    def record(room: Room, peer: Peer) -> None:
        principal = peer.principal
        event = AuditEvent(
            at=time.time(),
            action="write.refused",
            actor=principal.user_id if principal else None,
            room_id=room.key.room,
            target=room.key.doc,
        )
        task = asyncio.get_running_loop().create_task(meta.record(event))
        pending.add(task)
        task.add_done_callback(pending.discard)

    return record


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        path = sqlite_path(settings.store)
        if path is not None:
            from collab.db import migrate_with_backup

            applied = await anyio.to_thread.run_sync(migrate_with_backup, path)
            for name in applied:
                log.info("applied migration %s to %s", name, path)
        store = open_store(settings.store, synchronous=settings.sqlite_synchronous)
        await store.open()
        meta = open_meta_store(settings.store, synchronous=settings.sqlite_synchronous)
        await meta.open()
        registry = RoomRegistry(store, settings)
        registry.on_refused_write = _audit_refused_write(meta)
        registry.metrics = metrics
        metrics.watch(registry)
        app.state.store = store
        app.state.meta = meta
        app.state.registry = registry
        app.state.secret_keys = await anyio.to_thread.run_sync(load_secret_keys, settings)
        if app.state.dev_mode:
            app.state.dev_user_id = (await ensure_dev_user(meta)).id
        app.state.loop_lag.start()
        try:
            yield
        finally:
            await app.state.loop_lag.stop()
            # uvicorn has closed every socket (1012) by now: wait for the last commit.
            await registry.close()
            await meta.close()
            await store.close()
            log.info("store closed")

    metrics = Metrics(version=__version__)
    # metrics_port set: /metrics is served there only (collab serve starts that server).
    metrics_routes = [] if settings.metrics_port else [Route("/metrics", metrics_endpoint)]
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *metrics_routes,
            WebSocketRoute("/ws/{rest:path}", websocket_endpoint),
            Mount("/api/v1", routes=api_routes()),
            *auth_routes(settings),
        ],
        middleware=[
            Middleware(SocketObserver, metrics=metrics),
            Middleware(LoginSessionMiddleware, settings=settings),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.handshake_limiter = RateLimiter(settings.handshake_rate, settings.handshake_burst)
    app.state.connection_limits = ConnectionLimits(
        settings.max_connections, settings.max_connections_per_user
    )
    app.state.loop_lag = LoopLag(settings.overload_lag_seconds)
    app.state.login_limiter = RateLimiter(settings.login_rate, settings.login_burst)
    app.state.dev_mode = is_dev_mode(settings)
    app.state.dev_token = resolve_dev_token(settings) if app.state.dev_mode else ""
    return app
