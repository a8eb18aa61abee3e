"""Users: one row per OpenID Connect identity (issuer, subject), created on first login.

The profile (name, email, picture) is refreshed from the ID token at every login; an admin can
disable a user, which refuses their sessions and tokens (``collab.auth``) without deleting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class User:
    id: str
    issuer: str
    subject: str
    name: str = ""
    email: str | None = None
    email_verified: bool = False
    picture: str | None = None
    disabled: bool = False
    created_at: float = 0.0


class Users(Protocol):
    async def upsert_oidc_user(
        self,
        issuer: str,
        subject: str,
        *,
        name: str,
        email: str | None,
        email_verified: bool,
        picture: str | None,
    ) -> User:
        """The user for (issuer, subject), created or with its profile updated."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user_by_verified_email(self, email: str) -> User | None:
        """The oldest user with this verified email (ASCII case-insensitive), if any."""

    async def list_users(self) -> list[User]:
        """Every user, oldest first."""

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """errors.NotFound when there is no such user."""
