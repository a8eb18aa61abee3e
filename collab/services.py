"""``Services``: everything one app shares between requests and sockets, typed, in one object.

Built once by :meth:`Services.create` (no I/O: stores and the OIDC client are constructed, not
opened), kept as ``app.state.services``, opened and closed by the app's lifespan. Handlers reach
it through :func:`services`, never through loose attributes of ``app.state``. What needs I/O to
know (the secret keys, the dev user's id) is filled in by :meth:`Services.open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.requests import HTTPConnection

from collab import __version__
from collab.auth import oidc
from collab.auth.devmode import adopt_dev_token, ensure_dev_user, is_dev_mode, resolve_dev_token
from collab.auth.failures import CredentialGuard
from collab.auth.keys import load_secret_keys
from collab.chat import ChatService, LiveWindow, SocketChat
from collab.chat.readnodes import node_followers
from collab.db import migrate_with_backup, postgres_url, sqlite_database, sqlite_path
from collab.errors import CollabError, Rate
from collab.fanout import Fanout, new_node_id, open_fanout
from collab.files import FileService
from collab.meta import AuditEvent, MetaStore, Purged, described_docs, open_meta_store
from collab.meta.purge import retention_cutoff
from collab.metrics import Metrics
from collab.metrics.files import FileMetrics
from collab.metrics.health import StoreHealth
from collab.names import DocKey
from collab.ratelimit import Limiter, RateLimiter
from collab.search import Search, open_search_index
from collab.settings import Settings, masked
from collab.store import DocumentStore, open_store
from collab.store.blobs import open_blob_store
from collab.sync.admission import ConnectionLimits, LoopLag
from collab.sync.disabled import DisabledUsers
from collab.sync.followers import NodeFollowers
from collab.sync.heads import HeadPoller
from collab.sync.nodesweep import PresenceSweeper
from collab.sync.peer import Peer
from collab.sync.registry import RoomRegistry
from collab.sync.requests import ChatRequests
from collab.webhooks import WebhookService
from collab.wire import limits_from

log = logging.getLogger("collab.app")


@dataclass
class Services:
    settings: Settings
    store: DocumentStore
    meta: MetaStore
    registry: RoomRegistry
    fanout: Fanout | None  # updates between nodes (None: one node)
    heads: HeadPoller | None  # with a fanout: each open doc checks the store's head
    # with a fanout: the other nodes' role changes, revocations, deleted rooms, live-stream
    # counts and private read markers reach our sockets
    followers: NodeFollowers | None
    sweeper: PresenceSweeper | None  # with a fanout: dead nodes' awareness is dropped
    store_health: StoreHealth | None  # on PostgreSQL: the ping behind collab_store_healthy
    # Users disabled elsewhere (the CLI, another node) lose their open sockets; __post_init__.
    disabled: DisabledUsers = field(init=False)
    chat: ChatService
    chat_requests: ChatRequests  # the chat socket's requests (type 101), on ``chat``
    files: FileService  # uploads: bytes in the blob store, references in ``meta``
    webhooks: WebhookService  # outgoing webhooks: events in, the outbox's worker
    search: Search  # the search index, fed by chat rows and doc commits
    metrics: Metrics
    # Per client address or user id: shared by every node with a fanout (``limiter``).
    handshake_limiter: Limiter
    login_limiter: Limiter
    api_limits: dict[Rate, Limiter]  # per user id, by kind of thing created
    credential_guard: CredentialGuard
    connection_limits: ConnectionLimits
    loop_lag: LoopLag
    dev_mode: bool
    dev_token: str  # this process's dev login token ("" unless dev mode)
    oidc_client: Any | None  # Authlib's Starlette client; None in dev mode
    secret_keys: list[str] = field(default_factory=list)  # the signing key first; by open()
    dev_user_id: str = ""  # the dev user's id in dev mode; by open()
    purger: asyncio.Task[None] | None = None  # every purge_interval seconds; by open()

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Every service for ``settings``, wired, none opened yet."""
        sync = settings.sqlite_synchronous
        database = sqlite_database(settings.store, sync)  # SQLite: both stores' one writer
        meta = open_meta_store(settings.store, synchronous=sync, database=database)
        linked = described_docs(meta)  # memory://: its docs count in a first update's cap
        store = open_store(settings.store, synchronous=sync, database=database, described=linked)
        metrics = Metrics(version=__version__)
        window = LiveWindow(meta, settings.chat_live_messages)
        webhooks = WebhookService.create(meta, settings)
        search = Search(
            open_search_index(settings.store),
            meta,
            store,
            limits_from(settings),
            delay=settings.search_index_delay,
        )
        reports = SyncReports(metrics, meta, webhooks, search)
        fanout = _open_fanout(settings)
        registry = RoomRegistry(store, settings, reports, window.prepare, fanout)
        metrics.watch(registry)
        heads = _head_poller(settings, registry, fanout, reports)
        dev_mode = is_dev_mode(settings)
        chat = ChatService(meta, registry, window, settings, row_observer=search.indexer)
        chat.outbox = webhooks.chat_outbox  # a message and its webhook deliveries: one commit
        limits = api_limits(settings, fanout)
        handshakes, logins, failures = address_limits(settings, fanout)
        return cls(
            settings=settings,
            store=store,
            meta=meta,
            registry=registry,
            fanout=fanout,
            heads=heads,
            followers=node_followers(settings, registry, chat, fanout),
            sweeper=PresenceSweeper(registry, fanout) if fanout is not None else None,
            store_health=_store_health(settings, store, metrics),
            chat=chat,
            chat_requests=SocketChat(chat, meta, settings, limits[Rate.chat]),
            files=FileService(
                meta,
                open_blob_store(settings.store, settings.files_dir),
                settings,
                FileMetrics(metrics.registry),
            ),
            webhooks=webhooks,
            search=search,
            metrics=metrics,
            handshake_limiter=handshakes,
            login_limiter=logins,
            api_limits=limits,
            credential_guard=CredentialGuard(failures, reports=metrics),
            connection_limits=ConnectionLimits(
                settings.max_connections, settings.max_connections_per_user
            ),
            loop_lag=LoopLag(settings.overload_lag_seconds),
            dev_mode=dev_mode,
            dev_token=resolve_dev_token(settings) if dev_mode else "",
            oidc_client=None if dev_mode else oidc.build_client(settings, meta),
        )

    def __post_init__(self) -> None:
        interval = self.settings.user_recheck_interval
        self.disabled = DisabledUsers(self.registry, self.meta, interval=interval)

    def oidc(self) -> Any:
        """The OIDC client; only called on paths that dev mode never takes."""
        if self.oidc_client is None:
            raise RuntimeError("no identity provider is configured (dev mode)")
        return self.oidc_client

    async def open(self) -> None:
        """Apply pending migrations, open the stores, load the keys, start the lag probe."""
        path = sqlite_path(self.settings.store)
        if path is not None:
            applied = await anyio.to_thread.run_sync(migrate_with_backup, path)
            for name in applied:
                log.info("applied migration %s to %s", name, path)
        await self.store.open()
        await self.meta.open()
        await self.meta.raise_token_ttl_mark(self.settings.token_max_ttl)  # before any token
        await self.files.open()
        if postgres_url(self.settings.store) is not None and not self.settings.files_dir:
            log.warning(
                "files_dir is not set: uploaded files go to a temporary directory, deleted at"
                " exit and seen by no other node (set it to a directory every node shares)"
            )
        await self.search.open()
        self.secret_keys = await anyio.to_thread.run_sync(load_secret_keys, self.settings)
        if self.dev_mode:
            self.dev_user_id = (await ensure_dev_user(self.meta)).id
            if await adopt_dev_token(self.meta, self.dev_user_id, self.dev_token):
                log.warning("a new dev token: the old one's sessions and API tokens are revoked")
        if self.fanout is not None:
            await self.fanout.start()
            log.info("fan-out on %s as node %s", _redacted(self.settings.fanout), self.fanout.node)
        if self.heads is not None:
            self.heads.start()
        if self.followers is not None:
            await self.followers.start()
        if self.sweeper is not None:
            self.sweeper.start()
        if self.store_health is not None:
            self.store_health.start()
        self.disabled.start()
        self.loop_lag.start()
        self.webhooks.start()
        if self.settings.purge_interval > 0:
            self.purger = asyncio.get_running_loop().create_task(self._purge_forever())

    async def purge(self) -> Purged:
        """Delete what no longer matters (``collab.meta.purge``); logged when anything went."""
        now, settings = time.time(), self.settings
        purged = await self.meta.purge(
            audit_before=retention_cutoff(now, settings.audit_retention),
            webhooks_before=retention_cutoff(now, settings.webhook_retention),
        )
        if purged.total:
            log.info("purged %s", purged)
        return purged

    async def _purge_forever(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:  # a failed purge is retried at the next interval
                log.exception("purge failed")
            try:
                await self.files.collect()
            except Exception:  # likewise
                log.exception("collecting unreferenced files failed")
            await asyncio.sleep(self.settings.purge_interval)

    async def close(self) -> None:
        """Shutdown, after uvicorn closed every socket (1012): wait for the last commit."""
        if self.purger is not None:
            self.purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.purger
        await self.loop_lag.stop()
        if self.heads is not None:
            await self.heads.stop()
        if self.followers is not None:
            await self.followers.stop()
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.store_health is not None:
            await self.store_health.stop()
        await self.disabled.stop()
        await self.registry.close()
        # After the registry: its last commits report doc changes, which stop() enqueues.
        await self.webhooks.stop()
        if self.fanout is not None:
            await self.fanout.close()
        await self.files.close()
        await self.search.close()
        await self.meta.close()
        await self.store.close()
        log.info("store closed")


def _redacted(url: str) -> str:
    return str(masked("fanout", url))


def _open_fanout(settings: Settings) -> Fanout | None:
    """The fan-out ``--fanout`` names (None: one node), not started."""
    return open_fanout(
        settings.fanout,
        node=new_node_id(),
        prefix=settings.fanout_prefix,
        max_update=settings.max_doc_size,
    )


def _head_poller(
    settings: Settings, registry: RoomRegistry, fanout: Fanout | None, reports: SyncReports
) -> HeadPoller | None:
    """With a fanout: the periodic head check of every open doc (``collab.sync.heads``), and
    the fanout's own counters on /metrics."""
    if fanout is None:
        return None
    reports.metrics.watch_fanout(fanout)
    return HeadPoller(
        registry,
        fanout,
        reports,
        interval=settings.head_poll_interval,
        degraded_interval=settings.head_poll_degraded,
    )


def _store_health(settings: Settings, store: DocumentStore, metrics: Metrics) -> StoreHealth | None:
    """On PostgreSQL: the periodic ping whose answer /metrics reports."""
    if postgres_url(settings.store) is None:
        return None
    health = StoreHealth(store, settings.store_health_interval)
    metrics.watch_store(health)
    return health


def limiter(fanout: Fanout | None, kind: str, rate: float, burst: float) -> Limiter:
    """A limiter of ``rate`` and ``burst`` per key: this node's own, or with a fanout one every
    node shares (this node's own deciding while the fanout does not answer)."""
    local = RateLimiter(rate, burst)
    return local if fanout is None else fanout.limiter(kind, local)


def address_limits(settings: Settings, fanout: Fanout | None) -> tuple[Limiter, Limiter, Limiter]:
    """The limits per client address: handshakes, logins, failed credentials."""
    return (
        limiter(fanout, "handshake", settings.handshake_rate, settings.handshake_burst),
        limiter(fanout, "login", settings.login_rate, settings.login_burst),
        limiter(fanout, "auth_failure", settings.auth_failure_rate, settings.auth_failure_burst),
    )


def api_limits(settings: Settings, fanout: Fanout | None) -> dict[Rate, Limiter]:
    """One limiter per kind of thing a user creates. Tickets share the handshake rate (not its
    buckets): a page mints one per socket it opens, so it may mint as many at once as it may
    open."""
    rates = {kind: (settings.api_create_rate, settings.api_create_burst) for kind in Rate}
    rates[Rate.tickets] = (settings.handshake_rate, settings.handshake_burst)
    rates[Rate.chat] = (settings.chat_write_rate, settings.chat_write_burst)
    rates[Rate.search] = (settings.search_rate, settings.search_burst)
    return {kind: limiter(fanout, f"api_{kind.value}", *rate) for kind, rate in rates.items()}


def services(conn: HTTPConnection) -> Services:
    """The app's Services, from any request or socket."""
    found = conn.app.state.services
    if not isinstance(found, Services):
        raise RuntimeError("app.state.services is not set: build the app with create_app")
    return found


class SyncReports:
    """What the update path reports (``collab.sync.hooks.SyncHooks``): metrics, an audit
    record of the first refused write of each socket (later ones are only counted), and each
    doc's commits to the search index."""

    def __init__(
        self, metrics: Metrics, meta: MetaStore, webhooks: WebhookService, search: Search
    ) -> None:
        self.metrics = metrics
        self.meta = meta
        self.webhooks = webhooks
        self.search = search
        self._pending: set[asyncio.Task[None]] = set()

    def update_applied(self, seconds: float) -> None:
        self.metrics.update_apply_seconds.observe(seconds)

    def committed(self, seconds: float) -> None:
        self.metrics.store_commit_seconds.observe(seconds)

    def stored(self, key: DocKey) -> None:
        self.search.indexer.doc_stored(key)

    def compacted(self, seconds: float) -> None:
        self.metrics.compactions.inc()
        self.metrics.compaction_seconds.observe(seconds)

    def slow_consumer(self) -> None:
        self.metrics.slow_consumer_closes.inc()

    def refused(self, exc: CollabError) -> None:
        self.metrics.refusal(exc)

    def rebuilt(self) -> None:
        self.metrics.doc_rebuilds.inc()

    def fanout_received(self, lag: float) -> None:
        self.metrics.fanout_lag_seconds.observe(lag)

    def gap_filled(self, rows: int) -> None:
        self.metrics.gap_fills.inc()
        self.metrics.gap_fill_rows.inc(rows)

    def head_polled(self) -> None:
        self.metrics.head_polls.inc()

    def doc_changed(self, key: DocKey) -> None:
        self.webhooks.doc_changed(key.room, key.doc)

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
