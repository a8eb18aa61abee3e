"""Handles: each user's unique, stable, lower-case name for mentions (``@ann``).

A handle is 1 to 32 characters of ``[a-z0-9._-]``, starting with a letter or a digit. It is
unique case-insensitively (stored lower-case, compared with SQLite's NOCASE), given once when
the user is created (from the identity provider's ``preferred_username``, else the email's
local part, else the name, else ``user``; made unique by appending ``-2``, ``-3``...) and
changed only by the user (``PATCH /api/v1/me``): a later login never changes it. Display
names stay free text. :data:`RESERVED` handles are never anyone's, nor are they with trailing
``.``, ``_`` or ``-`` (a mention tries ``@here.`` as ``here.`` first): mentions use ``@room``.

This module is pure: both stores call it inside their one atomic step, so two users created at
once never get the same handle.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterator

MAX_HANDLE = 32
RESERVED = frozenset({"room", "here", "channel", "everyone"})
FALLBACK = "user"
DEV_ISSUER = "collab:dev"  # collab.auth.devmode's; its user's handle is "dev"
_VALID = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_OUTSIDE = re.compile(r"[^a-z0-9._-]+")
_SEPARATORS = re.compile(r"([._-])[._-]+")
_NUMBERED_TRIES = 1000  # then a random suffix: a bounded search however crowded a name is


class BadHandle(ValueError):
    """A handle that is malformed or reserved (the message says which)."""


def is_valid_handle(handle: str) -> bool:
    """Whether ``handle`` is well formed (lower case; says nothing of reserved or taken)."""
    return handle.isascii() and _VALID.fullmatch(handle) is not None


def lookup_key(handle: str) -> str | None:
    """What a lookup by ``handle`` matches (case folded as SQLite's NOCASE does: ASCII only),
    or None when no handle could match it."""
    key = handle.lower() if handle.isascii() else handle
    return key if is_valid_handle(key) else None


def parse_handle(raw: str) -> str:
    """A handle a user typed, lower-cased; BadHandle when malformed or reserved."""
    handle = raw.strip().lower()
    if not raw.isascii() or not is_valid_handle(handle):
        raise BadHandle(
            f"a handle is 1 to {MAX_HANDLE} characters of a-z, 0-9, '.', '_' and '-',"
            " starting with a letter or a digit"
        )
    if handle.rstrip("._-") in RESERVED:  # "@here." is tried as "here." first
        raise BadHandle(f"{handle!r} is reserved")
    return handle


def normalize_handle(raw: str | None) -> str:
    """The handle-shaped part of a name ("" when none): accents dropped, lower-cased, anything
    else turned into '-', separators squeezed, cut to 32 characters."""
    if not raw:
        return ""
    ascii_only = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    squeezed = _SEPARATORS.sub(r"\1", _OUTSIDE.sub("-", ascii_only.lower()))
    handle = squeezed.lstrip("._-")[:MAX_HANDLE].rstrip("._-")
    return handle if is_valid_handle(handle) else ""


def handle_base(*candidates: str | None) -> str:
    """The first candidate that normalizes to something (preferred username, email's local
    part, name...), else ``user``."""
    for candidate in candidates:
        base = normalize_handle(candidate)
        if base:
            return base
    return FALLBACK


def email_local_part(email: str | None) -> str | None:
    return email.rsplit("@", 1)[0] if email and "@" in email else None


def handle_candidates(base: str) -> Iterator[str]:
    """``base``, ``base-2``, ``base-3``... (cut to fit), then random suffixes; never a reserved
    one. The store takes the first that nobody has."""
    if base not in RESERVED:
        yield base
    for n in range(2, _NUMBERED_TRIES + 2):
        suffix = f"-{n}"
        yield base[: MAX_HANDLE - len(suffix)].rstrip("._-") + suffix
    while True:
        suffix = "-" + secrets.token_hex(4)
        yield base[: MAX_HANDLE - len(suffix)].rstrip("._-") + suffix


def existing_user_base(issuer: str, email: str | None, name: str) -> str:
    """The base handle of a user made before handles existed (their preferred username was
    not kept): the dev user's is ``dev``, as at creation; others' from email or name."""
    if issuer == DEV_ISSUER:
        return "dev"
    return handle_base(email_local_part(email), name)
