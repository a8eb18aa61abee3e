"""`collab serve | migrate`: a thin click layer over Settings and uvicorn.

Every ``serve`` option is generated from ``collab.settings.Settings``, each with its
``COLLAB_*`` environment twin; precedence is command line > environment > default.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from collab.settings import SETTINGS_FIELDS, Settings, env_name


def _settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for f in reversed(SETTINGS_FIELDS):
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {f.default!r}]"
        if kind is bool:
            decl = f"{flag}/--no-{f.name.replace('_', '-')}"
            func = click.option(decl, f.name, default=None, help=help_text)(func)
        else:
            func = click.option(flag, f.name, type=kind, default=None, help=help_text)(func)
    return func


@click.group()
@click.version_option(package_name="collab")
def main() -> None:
    """collab: rooms of Yjs documents, synced over WebSocket and kept durable."""


@main.command()
@_settings_options
def serve(**options: Any) -> None:
    """Serve /ws/{room}/{doc}, /healthz and /readyz (applies pending migrations first)."""
    import uvicorn

    from collab.app import create_app

    settings = _load_settings(options)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.ws_max_size,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_timeout,
        timeout_graceful_shutdown=int(settings.timeout_graceful_shutdown),
        log_level=settings.log_level,
        lifespan="on",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = uvicorn.Server(config)
    click.echo(f"collab: serving on http://{settings.host}:{settings.port} ({settings.store})")
    server.run()
    sys.exit(0 if server.started else 1)


@main.command()
@click.option("--store", "store", default=None, help="Store URL [env COLLAB_STORE]")
def migrate(store: str | None) -> None:
    """Apply pending migrations (after an online backup of a non-empty database)."""
    from collab.store import sqlite_path
    from collab.store.sqlite import migrate_with_backup

    settings = _load_settings({"store": store})
    path = sqlite_path(settings.store)
    if path is None:
        click.echo(f"{settings.store}: nothing to migrate")
        return
    applied = migrate_with_backup(path)
    click.echo(f"{path}: applied {', '.join(applied)}" if applied else f"{path}: up to date")


def _load_settings(options: dict[str, Any]) -> Settings:
    try:
        return Settings.from_env(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

