"""``Services``: everything one app shares between requests and sockets, typed, in one object.

Built once by :meth:`Services.create` (no I/O: stores and the OIDC client are constructed, not
opened), kept as ``app.state.services``, opened and closed by the app's lifespan. Handlers reach
it through :func:`services`, never through loose attributes of ``app.state``. What needs I/O to
know (the secret keys, the dev user's id) is filled in by :meth:`Services.open`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.requests import HTTPConnection

from collab import __version__
from collab.auth import oidc
from collab.auth.devmode import ensure_dev_user, is_dev_mode, resolve_dev_token
from collab.auth.keys import load_secret_keys
from collab.limits import ConnectionLimits, LoopLag
from collab.meta import open_meta_store
from collab.meta.base import AuditEvent, MetaStore
from collab.metrics import Metrics
from collab.peer import Peer
from collab.ratelimit import RateLimiter
from collab.room import Room
from collab.rooms import RoomRegistry
from collab.settings import Settings
from collab.store import open_store, sqlite_path
from collab.store.base import DocumentStore

log = logging.getLogger("collab.app")


@dataclass
class Services:
    settings: Settings
    store: DocumentStore
    meta: MetaStore
    registry: RoomRegistry
    metrics: Metrics
    handshake_limiter: RateLimiter
    login_limiter: RateLimiter
    connection_limits: ConnectionLimits
    loop_lag: LoopLag
    dev_mode: bool
    dev_token: str  # this process's dev login token ("" unless dev mode)
    oidc_client: Any | None  # Authlib's Starlette client; None in dev mode
    secret_keys: list[str] = field(default_factory=list)  # the signing key first; by open()
    dev_user_id: str = ""  # the dev user's id in dev mode; by open()

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Every service for ``settings``, wired, none opened yet."""
        store = open_store(settings.store, synchronous=settings.sqlite_synchronous)
        meta = open_meta_store(settings.store, synchronous=settings.sqlite_synchronous)
        metrics = Metrics(version=__version__)
        registry = RoomRegistry(store, settings)
        registry.on_refused_write = _audit_refused_write(meta)
        registry.metrics = metrics
        metrics.watch(registry)
        dev_mode = is_dev_mode(settings)
        return cls(
            settings=settings,
            store=store,
            meta=meta,
            registry=registry,
            metrics=metrics,
            handshake_limiter=RateLimiter(settings.handshake_rate, settings.handshake_burst),
            login_limiter=RateLimiter(settings.login_rate, settings.login_burst),
            connection_limits=ConnectionLimits(
                settings.max_connections, settings.max_connections_per_user
            ),
            loop_lag=LoopLag(settings.overload_lag_seconds),
            dev_mode=dev_mode,
            dev_token=resolve_dev_token(settings) if dev_mode else "",
            oidc_client=None if dev_mode else oidc.build_client(settings, meta),
        )

    def oidc(self) -> Any:
        """The OIDC client; only called on paths that dev mode never takes."""
        if self.oidc_client is None:
            raise RuntimeError("no identity provider is configured (dev mode)")
        return self.oidc_client

    async def open(self) -> None:
        """Apply pending migrations, open the stores, load the keys, start the lag probe."""
        path = sqlite_path(self.settings.store)
        if path is not None:
            from collab.store.sqlite import migrate_with_backup

            applied = await anyio.to_thread.run_sync(migrate_with_backup, path)
            for name in applied:
                log.info("applied migration %s to %s", name, path)
        await self.store.open()
        await self.meta.open()
        self.secret_keys = await anyio.to_thread.run_sync(load_secret_keys, self.settings)
        if self.dev_mode:
            self.dev_user_id = (await ensure_dev_user(self.meta)).id
        self.loop_lag.start()

    async def close(self) -> None:
        """Shutdown, after uvicorn closed every socket (1012): wait for the last commit."""
        await self.loop_lag.stop()
        await self.registry.close()
        await self.meta.close()
        await self.store.close()
        log.info("store closed")


def services(conn: HTTPConnection) -> Services:
    """The app's Services, from any request or socket."""
    found = conn.app.state.services
    if not isinstance(found, Services):
        raise RuntimeError("app.state.services is not set: build the app with create_app")
    return found


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
