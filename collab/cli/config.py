"""``collab config check``: every effective setting and where it came from.

It takes every ``serve`` option, so an operator checks exactly the command line they will
run. Secrets are masked (``collab.settings.masked``). It prints the whole table even when
something is wrong, then one ``problem:`` line per bad value (the same check and the same
line every other command stops on, ``collab.settings.resolve``) and per setting the server
would refuse to start with (dev mode on a public address), and exits 1; exit 2 when the
config file cannot be read at all.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from collab.cli.options import BadSettings, config_option, settings_options
from collab.settings import ConfigError, Settings, describe, env_name


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
        rows, problems = describe(config_file, **options)
    except ConfigError as exc:
        raise BadSettings([str(exc)]) from exc
    click.echo(f"# config file: {config_file or 'none'}")
    for name, value, source in rows:
        shown = json.dumps(value) if isinstance(value, str | bool) else repr(value)
        origin = f"env {env_name(name)}" if source == "env" else source
        click.echo(f"{name} = {shown}  # {origin}")
    if not problems:
        try:
            check_dev_bind(Settings.load(config_file, **options))
        except DevModeError as exc:
            problems.append(str(exc))
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        sys.exit(1)
