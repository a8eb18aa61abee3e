"""Personal API tokens: a user's long-lived bearer secrets, each named, listed and revocable.

Finding a token by its secret stamps ``last_used_at``, so the owner can see which are in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    created_at: float
    revoked: bool = False
    last_used_at: float | None = None


class ApiTokens(Protocol):
    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        """A new token and its secret, which is not stored."""

    async def find_api_token(self, secret: str) -> ApiToken | None:
        """The live token for a secret (and stamps last_used_at); None when unknown/revoked."""

    async def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        """The user's tokens, revoked ones included, oldest first."""

    async def revoke_api_token(self, token_id: str, user_id: str) -> None:
        """Revoke the token when it is ``user_id``'s; otherwise nothing happens."""
