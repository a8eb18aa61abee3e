"""The click options several commands share, each defined once, and the one way a command
turns what it was given into a Settings.

``--config`` (env ``COLLAB_CONFIG``) and ``--store`` are taken by every command that reads
settings; ``settings_options`` makes every Settings field an option (``serve``, ``config
check``). ``load_settings`` applies the precedence command line > environment > config file >
default (``Settings.load``) and turns every bad value into one ``Error:`` line naming the
setting, the value and where it came from, and exit 2, before the command does anything.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from collab.settings import CONFIG_ENV, SETTINGS_FIELDS, Settings, SettingsError, env_name

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar=CONFIG_ENV,
    default=None,
    help=f"TOML config file; keys are setting names [env {CONFIG_ENV}]",
)
store_option = click.option("--store", "store", default=None, help="Store URL [env COLLAB_STORE]")


class Seconds(click.FloatRange):
    """A command's own duration option (``compact --timeout``, ``files gc --grace``): a
    finite number within the range. click's FloatRange lets ``nan`` through (no comparison
    with it is true) and ``inf``, which the clocks and ``subprocess`` then choke on."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return number


def settings_options(func: F) -> F:
    """One option per setting (``--ws-max-size``, ``--no-auto-create-rooms``...), each
    defaulting to None so that an option not given leaves the environment and file in force."""
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


class BadSettings(click.ClickException):
    """Settings the command cannot run with: one ``Error:`` line each, exit 2 (a bad flag's
    code), without click's usage banner, which would bury the line that matters."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def show(self, file: IO[Any] | None = None) -> None:
        for problem in self.problems:
            click.echo(f"Error: {problem}", err=True, file=file)


def load_settings(config_file: str | os.PathLike[str] | None, **overrides: Any) -> Settings:
    """Settings from the command line's ``overrides``, ``COLLAB_*`` and the config file;
    ``BadSettings`` for an unreadable config file or any bad value."""
    try:
        return Settings.load(config_file, **overrides)
    except SettingsError as exc:
        raise BadSettings(exc.problems) from exc
    except ValueError as exc:  # ConfigError: the file cannot be read or has an unknown key
        raise BadSettings([str(exc)]) from exc
