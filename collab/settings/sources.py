"""Where each setting's value comes from, and the one place every value is checked.

``resolve`` walks the fields once: the command line (a value that is not None), then the
``COLLAB_*`` environment variable, then the TOML config file, then the default; each value
is then checked (``collab.settings.checks.CHECKS``, then the cross-field checks). A bad
value becomes one line naming the setting, the value (secrets masked) and its source, so an
operator knows what to fix and where:

    port = 99999 (from --port): must be a TCP port, 1-65535 (0 picks a free one)
    store = "postgresql://app:********@db/collab" (from COLLAB_STORE): unknown store scheme...

The functions take the field table as an argument (``collab.settings`` passes its own), so
this module never imports the Settings class.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collab.settings.checks import CHECKS, cross_problems, finite

Fields = Sequence[dataclasses.Field[Any]]
FilePath = str | os.PathLike[str]


class ConfigError(ValueError):
    """The config file cannot be read, or names an unknown key or a value of the wrong type."""


class SettingsError(ConfigError):
    """Some settings have values the server cannot run with; one line each in ``problems``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Resolved:
    """Every setting's effective value and its source (cli, env, file or default), and one
    line per value that fails its check."""

    sources: dict[str, tuple[Any, str]]
    problems: list[str]

    def values(self) -> dict[str, Any]:
        if self.problems:
            raise SettingsError(self.problems)
        return {name: value for name, (value, _) in self.sources.items()}


def resolve(
    fields: Fields,
    environ: Mapping[str, str] | None,
    file_values: Mapping[str, Any] | None,
    config: FilePath | None,
    overrides: Mapping[str, Any],
) -> Resolved:
    """Each field's value by precedence, checked. ``config`` only names the file in problems."""
    environ = os.environ if environ is None else environ
    file_values = file_values or {}
    unknown = set(overrides) - {f.name for f in fields}
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    sources: dict[str, tuple[Any, str]] = {}
    problems: list[str] = []
    for f in fields:
        raw = environ.get(env_name(f.name))
        if overrides.get(f.name) is not None:
            sources[f.name] = (overrides[f.name], "cli")
        elif raw is not None:
            value, problem = parse_value(f, raw)
            sources[f.name] = (value, "env")
            if problem:
                problems.append(_problem(f.name, raw, "env", config, problem))
                continue
        elif f.name in file_values:
            sources[f.name] = (file_values[f.name], "file")
        else:
            sources[f.name] = (f.default, "default")
        value, source = sources[f.name]
        problem = finite(value) or CHECKS[f.name](value)
        if problem:
            problems.append(_problem(f.name, value, source, config, problem))
    if not problems:
        for name, why in cross_problems({k: v for k, (v, _) in sources.items()}):
            problems.append(_problem(name, sources[name][0], sources[name][1], config, why))
    return Resolved(sources, problems)


def _problem(name: str, value: Any, source: str, config: FilePath | None, why: str) -> str:
    where = {
        "cli": "--" + name.replace("_", "-"),
        "env": env_name(name),
        "file": f"config file {config}" if config else "config file",
        "default": "default",
    }[source]
    shown = masked(name, value)
    text = json.dumps(shown) if isinstance(shown, str) else repr(shown)
    return f"{name} = {text} (from {where}): {why}"


def load_config_file(path: FilePath, fields: Fields) -> dict[str, Any]:
    """The settings a TOML file sets, type-checked against the fields."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    by_name = {f.name: f for f in fields}
    values: dict[str, Any] = {}
    for key, value in data.items():
        f = by_name.get(key)
        if f is None:
            close = difflib.get_close_matches(key.replace("-", "_"), by_name, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config file {path}: unknown setting {key!r}{hint}")
        values[key] = _typed(f.name, type(f.default), value, path)
    return values


def _typed(name: str, kind: type[Any], value: Any, path: FilePath) -> Any:
    ok = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int | float) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, kind) and not isinstance(value, bool)
    )
    if not ok:
        raise ConfigError(
            f"config file {path}: {name} must be a {kind.__name__}, got {type(value).__name__}"
        )
    return float(value) if kind is float else value


def is_secret(name: str) -> bool:
    """Settings never printed: client secrets, signing keys, tokens (``token_max_ttl`` is not)."""
    return "secret" in name or name.endswith("token")


# scheme://user:PASSWORD@host...: the password part of a URL's authority.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@")
# ...?password=PASSWORD&...: a credential as a query parameter, which libpq (password,
# sslpassword) and redis-py (password) accept as well as the user information.
_QUERY_SECRET = re.compile(r"([?&][^=&#]*(?:password|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)


def masked(name: str, value: Any) -> Any:
    """The value as it may be printed: secrets hidden, and a password inside a URL (a store
    URL ``postgresql://user:password@host/db``, or ``...?password=``) replaced."""
    if is_secret(name) and value:
        return "********"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1********@", value)
        if "://" in value:
            value = _QUERY_SECRET.sub(r"\1********", value)
    return value


def env_name(field_name: str) -> str:
    return "COLLAB_" + field_name.upper()


def parse_value(f: dataclasses.Field[Any], raw: str) -> tuple[Any, str | None]:
    """An environment variable's text as the field's type, or (the text, what is wrong)."""
    kind: type[Any] = type(f.default)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True, None
        if lowered in {"0", "false", "no", "off"}:
            return False, None
        return raw, "must be true or false (1/0, yes/no, on/off)"
    if kind is str:
        return raw, None
    try:
        return kind(raw.strip()), None
    except ValueError:
        return raw, f"must be {'an integer' if kind is int else 'a number'}"
