"""`collab serve | migrate`: a thin click layer over Settings and uvicorn.

Every ``serve`` option is generated from ``collab.settings.Settings``, each with its
``COLLAB_*`` environment twin and config file key; precedence is command line > environment >
config file > default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from collab import logs
from collab.auth import redact
from collab.auth.devmode import DevModeError, check_dev_bind, login_url
from collab.cli.headtimeout import head_timeout_protocol
from collab.cli.heap import freeze_startup_heap
from collab.cli.options import config_option, load_settings, settings_options, store_option
from collab.cli.startup import plain_startup_failures
from collab.cli.wsprotocol import write_now_protocol
from collab.db import StoreError
from collab.fanout import FanoutError, check_fanout
from collab.ops.lock import hold_server_lock
from collab.settings import Settings, masked
from collab.web.bundle import BundleError, ensure_bundle


@click.command()
@settings_options
@config_option
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Open the workspace in a web browser once serving (dev mode: the login URL).",
)
def serve(config_file: str | None, open_browser: bool, **options: Any) -> None:
    """Serve the workspace at /, /ws/{room}/{doc}, the API, /healthz and /readyz (applies
    pending SQLite migrations first; a PostgreSQL database is migrated by `collab migrate`
    only, and refused while migrations are pending)."""
    import uvicorn

    from collab.app import create_app

    settings = load_settings(config_file, **options)
    _check_tls(settings)
    try:
        check_dev_bind(settings)
        check_fanout(settings.fanout)
        # Held until exit: `collab restore` refuses a database a server holds.
        server_lock = hold_server_lock(settings)  # noqa: F841
        # Never a stale or missing workspace: rebuilt from a checkout's changed sources, or
        # a refusal saying what to run.
        bundle = ensure_bundle()
    except (DevModeError, StoreError, BundleError, FanoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        logs.install(settings.log_format, settings.log_level)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    # Every record reaching collab's handler, from any logger, loses its credentials.
    redact.install(logging.getLogger().handlers)
    app = create_app(settings, bundle)
    config = uvicorn.Config(
        plain_startup_failures(app),
        host=settings.host,
        port=settings.port,
        http=head_timeout_protocol(settings.header_timeout),
        ws=write_now_protocol(),
        ws_max_size=settings.ws_max_size,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        # Seconds as given: uvicorn waits with asyncio.wait_for, fractions included.
        timeout_graceful_shutdown=settings.timeout_graceful_shutdown,  # type: ignore[arg-type]
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers propagate to collab.logs' handler
        lifespan="on",
        proxy_headers=True,
        ssl_certfile=settings.ssl_certfile or None,
        ssl_keyfile=settings.ssl_keyfile or None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = _server_class(uvicorn.Server)(config)
    server.on_started = lambda port: _announce(settings, app, port, open_browser)
    metrics_server = _serve_metrics_port(settings, app)
    scheme = "https" if settings.ssl_certfile else "http"
    store = masked("store", settings.store)
    click.echo(f"collab: serving on {scheme}://{settings.host}:{settings.port} ({store})")
    server.run()
    if metrics_server is not None:
        metrics_server.shutdown()
    sys.exit(0 if server.started else 1)


@click.command()
@store_option
@config_option
def migrate(store: str | None, config_file: str | None) -> None:
    """Apply pending migrations (SQLite: after an online backup of a non-empty database;
    PostgreSQL: take a pg_dump first; two runs at once apply each migration once)."""
    from collab.db import migrate_with_backup, postgres_url, sqlite_path

    settings = load_settings(config_file, store=store)
    if postgres_url(settings.store) is not None:
        _migrate_postgres(settings.store)
        return
    path = sqlite_path(settings.store)
    if path is None:
        click.echo(f"{settings.store}: nothing to migrate")
        return
    try:
        applied = migrate_with_backup(path)
    except StoreError as exc:  # not a database; newer than this collab
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: applied {', '.join(applied)}" if applied else f"{path}: up to date")


def _migrate_postgres(url: str) -> None:
    from collab.db.pgmigrate import migrate as run_migrations

    try:
        applied = run_migrations(url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    where = masked("store", url)
    click.echo(f"{where}: applied {', '.join(applied)}" if applied else f"{where}: up to date")


def _check_tls(settings: Settings) -> None:
    """The certificate and key load as uvicorn will load them, or one error line naming them
    (uvicorn found out once the app had started, and printed a traceback)."""
    if not settings.ssl_certfile:
        return
    import ssl

    def no_password() -> bytes:
        return b""  # collab passes uvicorn no key password: an encrypted key cannot be used

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            settings.ssl_certfile, settings.ssl_keyfile or None, no_password
        )
    except (ssl.SSLError, OSError) as exc:
        key = f" and ssl_keyfile {settings.ssl_keyfile}" if settings.ssl_keyfile else ""
        raise click.ClickException(
            f"ssl_certfile {settings.ssl_certfile}{key}: not a usable PEM certificate and its "
            f"unencrypted private key ({exc})"
        ) from exc


TICK = 1.0  # seconds between the serving loop's checks (uvicorn's: 0.1)


def _server_class(base: type[Any]) -> type[Any]:
    """uvicorn's Server, calling ``on_started(port)`` once it listens (port 0 is resolved);
    what startup made is frozen out of the garbage collector first (``collab.cli.heap``).

    Its main loop ticks once a ``TICK``, not ten times a second: each tick woke the event
    loop's thread from an idle wait (a context switch and some Python, 10 a second on a server
    with nothing to do). A tick refreshes the ``Date`` header and checks whether to stop: the
    header still changes every second, and a stop (SIGTERM, SIGINT) wakes the loop at once
    instead of waiting for the next tick."""

    class Server(base):  # type: ignore[misc]
        on_started: Callable[[int], None] | None = None
        _stop: asyncio.Event | None = None
        _loop: asyncio.AbstractEventLoop | None = None

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                freeze_startup_heap()
            if self.started and self.on_started is not None and self.servers:
                self.on_started(self.servers[0].sockets[0].getsockname()[1])

        async def main_loop(self) -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            counter = 0
            should_exit = await self.on_tick(counter)
            while not should_exit:
                counter = (counter + 10) % 864000  # uvicorn's header refresh: counter % 10 == 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), TICK)
                should_exit = await self.on_tick(counter)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if self._loop is not None and self._stop is not None:
                with contextlib.suppress(RuntimeError):  # the loop already closed
                    self._loop.call_soon_threadsafe(self._stop.set)

    return Server


def _serve_metrics_port(settings: Settings, app: Any) -> Any:
    """``metrics_port`` set: /metrics on that port (same host), not on the main one."""
    if not settings.metrics_port:
        return None
    from collab.metrics import serve_metrics_port

    try:
        return serve_metrics_port(
            app.state.services.metrics, settings.host, settings.metrics_port, settings.metrics_token
        )
    except OSError as exc:
        raise click.ClickException(f"metrics port {settings.metrics_port}: {exc}") from exc


def _announce(settings: Settings, app: Any, port: int, open_browser: bool = False) -> None:
    """Where to go, printed last (after uvicorn's lines) where the eye lands; on stdout, like
    Jupyter, never into the logs (dev mode's URL carries the token). ``--open`` opens it."""
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    scheme = "https" if settings.ssl_certfile else "http"
    base = settings.public_url or f"{scheme}://{host}:{port}"
    url = base.rstrip("/") + "/"
    if app.state.services.dev_mode:
        url = login_url(base, app.state.services.dev_token)
        click.echo(
            "collab: DEV MODE (no identity provider configured). To sign in as another "
            "person on this machine, add &name=TheirName to the URL. Open this URL to log in:\n"
            f"    {url}"
        )
    else:
        click.echo(f"collab: the workspace is at {url}")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
