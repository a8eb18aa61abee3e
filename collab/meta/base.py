"""The MetaStore seam: the records and the async Protocol every backend implements.

Secrets (session ids, API tokens, invite and ticket codes) are generated here with
``secrets.token_urlsafe`` and only their SHA-256 digests are stored: a leaked database does not
log anyone in. Callers get the plain secret exactly once, at creation.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol


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


@dataclass(frozen=True)
class Session:
    id: str  # the digest of the cookie value, never the cookie value itself
    user_id: str
    created_at: float
    expires_at: float
    revoked: bool = False


@dataclass(frozen=True)
class RoomRecord:
    id: str
    title: str
    created_by: str
    created_at: float
    gc: bool = True


@dataclass(frozen=True)
class Member:
    room_id: str
    user_id: str
    role: Role
    added_at: float = 0.0


@dataclass(frozen=True)
class Invite:
    id: str
    room_id: str
    role: Role
    created_by: str
    expires_at: float
    used_by: str | None = None


@dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    created_at: float
    revoked: bool = False
    last_used_at: float | None = None


@dataclass(frozen=True)
class Ticket:
    user_id: str
    room_id: str
    doc: str | None
    role_ceiling: Role | None
    expires_at: float


@dataclass(frozen=True)
class AuditEvent:
    at: float
    action: str  # "login.success", "login.failure", "member.role", "token.mint", ...
    actor: str | None = None  # user id
    room_id: str | None = None
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None
    id: int | None = None


class MetaStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # users
    async def upsert_oidc_user(
        self,
        issuer: str,
        subject: str,
        *,
        name: str,
        email: str | None,
        email_verified: bool,
        picture: str | None,
    ) -> User: ...
    async def get_user(self, user_id: str) -> User | None: ...
    async def find_user_by_verified_email(self, email: str) -> User | None: ...
    async def list_users(self) -> list[User]: ...
    async def set_user_disabled(self, user_id: str, disabled: bool) -> None: ...

    # sessions (server-side; the cookie holds the secret, the row its digest)
    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]: ...
    async def get_session(self, secret: str) -> Session | None:
        """The live session for a cookie value: None when unknown, expired or revoked."""
    async def revoke_session(self, session_id: str) -> None: ...
    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        """Revoke every live session of a user; returns their ids (to close open sockets)."""

    # rooms and members
    async def create_room(self, room_id: str, title: str, owner_id: str) -> RoomRecord:
        """Create the room and make ``owner_id`` its owner, atomically; Conflict if it exists."""
    async def get_room(self, room_id: str) -> RoomRecord | None: ...
    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]: ...
    async def count_rooms_created_by(self, user_id: str) -> int: ...
    async def rename_room(self, room_id: str, title: str) -> None: ...
    async def delete_room(self, room_id: str) -> None: ...
    async def get_member(self, room_id: str, user_id: str) -> Member | None: ...
    async def list_members(self, room_id: str) -> list[Member]: ...
    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member: ...
    async def remove_member(self, room_id: str, user_id: str) -> None: ...

    # invites: a link that grants a role once, until it expires
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]: ...
    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        """Single use, atomically; errors.NotFound when unknown, used or expired."""

    # personal API tokens
    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]: ...
    async def find_api_token(self, secret: str) -> ApiToken | None:
        """The live token for a secret (and stamps last_used_at); None when unknown/revoked."""
    async def list_api_tokens(self, user_id: str) -> list[ApiToken]: ...
    async def revoke_api_token(self, token_id: str, user_id: str) -> None: ...

    # single-use WebSocket tickets, valid for seconds
    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str: ...
    async def consume_ticket(self, secret: str) -> Ticket | None:
        """Atomically use a ticket; None when unknown, used or expired."""

    # a small key-value cache with expiry (Authlib's state/nonce/PKCE verifier live here)
    async def cache_get(self, key: str) -> str | None: ...
    async def cache_set(self, key: str, value: str, ttl: float) -> None: ...
    async def cache_delete(self, key: str) -> None: ...

    # audit
    async def record(self, event: AuditEvent) -> None: ...
    async def list_audit(
        self, *, room_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEvent]: ...
