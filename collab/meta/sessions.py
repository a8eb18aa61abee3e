"""Browser sessions, kept server-side: the cookie holds the secret, the row its digest.

A session is live until it expires or is revoked; revoking all of a user's sessions returns
their ids so the caller can close the sockets they opened; ``live_sessions`` tells another
node which of the sessions behind its sockets still are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Session:
    id: str  # the digest of the cookie value, never the cookie value itself
    user_id: str
    created_at: float
    expires_at: float
    revoked: bool = False


class Sessions(Protocol):
    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]:
        """A new session and its secret (the cookie value), which is not stored."""

    async def get_session(self, secret: str) -> Session | None:
        """The live session for a cookie value: None when unknown, expired or revoked."""

    async def revoke_session(self, session_id: str) -> None:
        """Revoke one session by id (its digest); unknown ids are ignored."""

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        """Revoke every live session of a user; returns their ids (to close open sockets)."""

    async def live_sessions(self, session_ids: Iterable[str]) -> set[str]:
        """Which of these session ids (digests) are live: neither expired nor revoked."""
