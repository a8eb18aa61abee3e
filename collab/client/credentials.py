"""The credential a client presents: a fixed token, or a callback that fetches a fresh one.

A room token (a JWT) says when it expires; a callback-backed credential is refreshed
``margin`` seconds before (in its last quarter, for a short one), so an HTTP call never
presents a token about to die, and a socket closed at the token's expiry (4001) reconnects at
once with the next one. A personal API token does not expire: it is fetched once and reused
until the server refuses it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeGuard

import anyio

TokenSource = Callable[[], Awaitable[str]]


def token_lifetime(token: str) -> tuple[float, float] | None:
    """A JWT's ``(iat, exp)`` (unverified: only to know when to refresh), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    iat, exp = payload.get("iat", 0), payload.get("exp")
    if not (_is_number(iat) and _is_number(exp)):
        return None
    return float(iat), float(exp)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Credentials:
    """``get()`` the token to present now; ``refresh()`` after the server refused it."""

    def __init__(
        self,
        token: str | None = None,
        source: TokenSource | None = None,
        *,
        margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (token is None) == (source is None):
            raise ValueError("give a token or a source of tokens (a callback), not both")
        self._token = token
        self._source = source
        self._margin = margin
        self._clock = clock
        self._lock = anyio.Lock()

    @property
    def refreshable(self) -> bool:
        return self._source is not None

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or self._stale(self._token):
                await self._fetch()
            assert self._token is not None
            return self._token

    async def refresh(self, refused: str | None = None) -> bool:
        """Fetch a new token (unless another caller already replaced ``refused``); False when
        there is no source to ask."""
        if self._source is None:
            return False
        async with self._lock:
            if refused is None or self._token == refused:
                await self._fetch()
        return True

    def _stale(self, token: str) -> bool:
        if self._source is None:
            return False
        lifetime = token_lifetime(token)
        if lifetime is None:
            return False
        issued, expires = lifetime
        # A short-lived token is refreshed in its last quarter, a long one `margin` before.
        margin = min(self._margin, max(0.0, expires - issued) / 4)
        return expires - margin <= self._clock()

    async def _fetch(self) -> None:
        assert self._source is not None
        token = await self._source()
        if not isinstance(token, str) or not token:
            raise ValueError("the token source returned no token")
        self._token = token
