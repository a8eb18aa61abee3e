"""``collab config check``: every effective setting and where it came from.

It takes every ``serve`` option, so an operator checks exactly the command line they will
run. Secrets are masked (``collab.settings.masked``); exit 1 names each problem the server
would refuse to start with (a bad store URL, dev mode on a public address), exit 2 a bad value.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from collab.cli.options import config_option, load_settings, settings_options
from collab.db import StoreError, sqlite_path
from collab.settings import describe, env_name


@click.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("check")
@settings_options
@config_option
def check(config_file: str | None, **options: Any) -> None:
    """Print every effective setting and where it came from (secrets masked)."""
    from collab.auth.devmode import DevModeError, check_dev_bind

    try:
        rows = describe(config_file, **options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"# config file: {config_file or 'none'}")
    for name, value, source in rows:
        shown = json.dumps(value) if isinstance(value, str | bool) else repr(value)
        origin = f"env {env_name(name)}" if source == "env" else source
        click.echo(f"{name} = {shown}  # {origin}")
    settings = load_settings(config_file, **options)
    problems = []
    try:
        sqlite_path(settings.store)
    except StoreError as exc:
        problems.append(str(exc))
    try:
        check_dev_bind(settings)
    except DevModeError as exc:
        problems.append(str(exc))
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
