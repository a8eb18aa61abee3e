"""The config file: TOML whose keys are Settings field names (``port = 8080``).

``collab serve --config collab.toml`` (or ``COLLAB_CONFIG``) reads it once; precedence is
command line > environment > file > default (``Settings.from_sources``). A key that is not a
setting is an error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from typing import Any

from collab.settings import SETTINGS_FIELDS, Settings, setting_sources

CONFIG_ENV = "COLLAB_CONFIG"
_FIELDS = {f.name: f for f in SETTINGS_FIELDS}


class ConfigError(ValueError):
    """The config file cannot be read, or names an unknown key or a value of the wrong type."""


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings a TOML file sets, type-checked against the Settings fields."""
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    values: dict[str, Any] = {}
    for key, value in data.items():
        f = _FIELDS.get(key)
        if f is None:
            close = difflib.get_close_matches(key.replace("-", "_"), _FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config file {path}: unknown setting {key!r}{hint}")
        values[key] = _typed(f.name, type(f.default), value, path)
    return values


def _typed(name: str, kind: type[Any], value: Any, path: str | os.PathLike[str]) -> Any:
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


def masked(name: str, value: Any) -> Any:
    if is_secret(name) and value:
        return "********"
    return value


def load_settings(
    config: str | os.PathLike[str] | None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings from an optional config file, the environment and explicit overrides."""
    file_values = load_config_file(config) if config else None
    return Settings.from_sources(environ, file_values, **overrides)


def describe(
    config: str | os.PathLike[str] | None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> list[tuple[str, Any, str]]:
    """(name, masked value, source) for every setting: what ``collab config check`` prints."""
    file_values = load_config_file(config) if config else None
    sources = setting_sources(environ, file_values, **overrides)
    Settings(**{name: value for name, (value, _) in sources.items()})  # validates the set
    return [(name, masked(name, value), src) for name, (value, src) in sources.items()]
