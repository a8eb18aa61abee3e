"""What every kind of meta record shares: room roles, secrets.

Each record kind has its own module (``users``, ``sessions``, ``rooms``, ...) holding its
records and its small Protocol; ``collab.meta.metastore.MetaStore`` is all of them in one.

Secrets (session ids, API tokens, invite and ticket codes) are generated here with
``secrets.token_urlsafe`` and only their SHA-256 digests are stored: a leaked database does not
log anyone in. Callers get the plain secret exactly once, at creation.
"""

from __future__ import annotations

import enum
import hashlib
import secrets


class Role(enum.IntEnum):
    """Room roles, ordered: a higher role can do everything a lower one can."""

    viewer = 10
    commenter = 20
    editor = 30
    owner = 40

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown role {name!r}") from None

    @property
    def can_write_docs(self) -> bool:
        return self >= Role.editor


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
