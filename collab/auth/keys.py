"""The server's secret keys: ``COLLAB_SECRET_KEY`` or one key generated once into the data dir.

A comma-separated ``COLLAB_SECRET_KEY`` rotates keys: the first signs, every one verifies.
Unset, a key is generated on the first start into ``secret_key`` beside the SQLite database
(mode 0600) and read back on every later start, so signed cookies and room tokens survive a
restart; backups copy the data directory with it. Only a ``memory://`` store, which keeps
nothing across restarts anyway, gets a key that lives as long as the process.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from collab.auth.redact import redact_url
from collab.db import sqlite_path
from collab.settings import Settings

log = logging.getLogger("collab.auth.keys")

KEY_FILE = "secret_key"
MIN_KEY_LENGTH = 16


class SecretKeyError(Exception):
    """The configured or stored key cannot be used (too short, unreadable): a startup error,
    never a client's, so it stays outside ``collab.errors``' tree."""


def load_secret_keys(settings: Settings) -> list[str]:
    """Every key that verifies, the signing key first."""
    if settings.secret_key.strip():
        keys = [k.strip() for k in settings.secret_key.split(",") if k.strip()]
        for key in keys:
            if len(key) < MIN_KEY_LENGTH:
                raise SecretKeyError(
                    f"COLLAB_SECRET_KEY: each key needs at least {MIN_KEY_LENGTH} characters"
                )
        return keys
    data_dir = data_directory(settings)
    if data_dir is None:
        log.info("no data directory (%s): secret key lives in memory", redact_url(settings.store))
        return [secrets.token_urlsafe(32)]
    return [read_or_create_key(data_dir / KEY_FILE)]


def data_directory(settings: Settings) -> Path | None:
    """The directory of the SQLite database, or None for a store without files."""
    path = sqlite_path(settings.store)
    if path is None:
        return None
    return path.parent if str(path.parent) else Path(".")


def read_or_create_key(path: Path) -> str:
    """Read the key at ``path``, creating it (0600, exclusively) when it does not exist."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: two processes starting at once agree on the one that won the create.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.info("generated a secret key into %s", path)
    return key


def _read_key(path: Path) -> str:
    key = path.read_text("ascii").strip()
    if len(key) < MIN_KEY_LENGTH:
        raise SecretKeyError(f"{path}: the stored secret key is empty or too short")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o): chmod 600 it", path, mode)
    return key
