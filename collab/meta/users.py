"""Users: one row per OpenID Connect identity (issuer, subject), created on first login.

The profile (name, email, picture) is refreshed from the ID token at every login; an admin can
disable a user, which refuses their sessions and tokens (``collab.auth``) without deleting them.
Each user has a unique, stable ``handle`` (``collab.meta.handles``), given at creation and
changed only by :meth:`Users.set_handle`, and per-user settings (``private_read_markers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


def storable(text: str) -> str:
    """``text`` as every store keeps it: a NUL (which PostgreSQL's ``text`` cannot hold) as
    U+FFFD, so a provider's profile with one signs in, and reads back, alike everywhere."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


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
    handle: str = ""  # unique, lower-case (collab.meta.handles)
    private_read_markers: bool = False  # read markers hidden from other members


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
        preferred_handle: str | None = None,
    ) -> User:
        """The user for (issuer, subject), created or with its profile updated.

        A new user gets a unique handle from ``preferred_handle`` (the provider's
        ``preferred_username``), else the email's local part, else the name, else ``user``,
        with ``-2``, ``-3``... appended when taken; an update never changes the handle.
        A NUL in any of the provider's strings is kept as U+FFFD (``storable``).
        """

    async def get_user(self, user_id: str) -> User | None: ...

    async def find_user_by_verified_email(self, email: str) -> User | None:
        """The oldest user with this verified email (ASCII case-insensitive), if any."""

    async def list_users(self) -> list[User]:
        """Every user, oldest first."""

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """errors.NotFound when there is no such user."""

    async def get_user_by_handle(self, handle: str) -> User | None:
        """The user with this handle (case-insensitive), if any."""

    async def get_users_by_handles(self, handles: Iterable[str]) -> dict[str, User]:
        """The users with these handles (case-insensitive; unknown or malformed ones left
        out), keyed by their stored, lower-case handle: resolving a message's mentions."""

    async def set_handle(self, user_id: str, handle: str) -> User:
        """Change a user's handle (``handles.parse_handle`` first): errors.Conflict when
        someone else has it (case-insensitive), errors.NotFound when there is no such user,
        ``handles.BadHandle`` when malformed or reserved."""

    async def set_private_read_markers(self, user_id: str, private: bool) -> None:
        """errors.NotFound when there is no such user."""

    async def get_private_read_markers(self, user_ids: Iterable[str]) -> set[str]:
        """Which of these users keep their read markers private (unknown ids: not)."""

    async def get_disabled_users(self, user_ids: Iterable[str]) -> set[str]:
        """Which of these users are disabled (unknown ids: not); batched, so a node can ask
        about every user behind its open sockets at once (``collab.sync.disabled``)."""

    async def assign_missing_handles(self) -> int:
        """Give every user without a handle one (rows made before handles existed: migration
        0006 adds the column, and SQL alone cannot normalize names); how many got one. The
        SQLite store runs it when opened."""
