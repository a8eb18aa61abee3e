"""create_app(settings): routes, lifespan, wiring. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

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
from collab.meta import AuditEvent, MetaStore, open_meta_store
from collab.metrics import Metrics, SocketObserver, metrics_endpoint
from collab.names import DocKey
from collab.ratelimit import RateLimiter
from collab.settings import Settings
from collab.store import open_store
from collab.sync.admission import ConnectionLimits, LoopLag
from collab.sync.endpoint import websocket_endpoint
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry

log = logging.getLogger("collab.app")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await request.app.state.store.ping()
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready", "rooms_loaded": len(request.app.state.registry)})


class AppHooks:
    """The update path's reports: metrics, and an audit record of the first refused write of
    each socket (later ones are only counted)."""

    def __init__(self, metrics: Metrics, meta: MetaStore) -> None:
        self.metrics = metrics
        self.meta = meta
        self._pending: set[asyncio.Task[None]] = set()

    def update_applied(self, seconds: float) -> None:
        self.metrics.update_apply_seconds.observe(seconds)

    def committed(self, seconds: float) -> None:
        self.metrics.store_commit_seconds.observe(seconds)

    def compacted(self, seconds: float) -> None:
        self.metrics.compactions.inc()
        self.metrics.compaction_seconds.observe(seconds)

    def slow_consumer(self) -> None:
        self.metrics.slow_consumer_closes.inc()

    def write_refused(self, key: DocKey, peer: Peer, first: bool) -> None:
        self.metrics.refused["readonly"].inc()
        if not first:
            return
        principal = peer.principal
        event = AuditEvent(
            at=time.time(),
            action="write.refused",
            actor=principal.user_id if principal else None,
            room_id=key.room,
            target=key.doc,
        )
        task = asyncio.get_running_loop().create_task(self.meta.record(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


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
        registry = RoomRegistry(store, settings, AppHooks(metrics, meta))
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
