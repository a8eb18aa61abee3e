"""An in-process MetaStore: the twin the contract suite also runs against (``memory://``).

Every method runs without an ``await`` between its read and its write, so each is atomic on
the event loop exactly as the SQLite store's transactions are. Records are frozen dataclasses,
so handing them out never exposes internal state.
"""

from __future__ import annotations

import json
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from collab.errors import Conflict, NotFound
from collab.meta.base import (
    ApiToken,
    AuditEvent,
    Invite,
    Member,
    Role,
    RoomRecord,
    Session,
    Ticket,
    User,
    digest,
    new_secret,
)

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _email_key(email: str) -> str:
    """ASCII-only case folding: what SQLite's NOCASE collation does, so both stores agree."""
    return email.translate(_ASCII_FOLD)


def _json_copy(detail: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON, as the SQLite store stores it (and refusing what it would)."""
    copied: dict[str, Any] = json.loads(json.dumps(detail))
    return copied


@dataclass
class _Ticket:
    ticket: Ticket
    used: bool = False


class MemoryMetaStore:
    """Keeps everything in dicts; lost on exit. ``clock`` is injectable for expiry tests."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._users: dict[str, User] = {}
        self._sessions: dict[str, Session] = {}  # by digest
        self._rooms: dict[str, RoomRecord] = {}
        self._members: dict[tuple[str, str], Member] = {}
        self._invites: dict[str, Invite] = {}  # by digest
        self._tokens: dict[str, tuple[ApiToken, str]] = {}  # by id: (token, digest)
        self._tickets: dict[str, _Ticket] = {}  # by digest
        self._cache: dict[str, tuple[str, float]] = {}
        self._audit: list[AuditEvent] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

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
    ) -> User:
        for user in self._users.values():
            if user.issuer == issuer and user.subject == subject:
                updated = replace(
                    user, name=name, email=email, email_verified=email_verified, picture=picture
                )
                self._users[user.id] = updated
                return updated
        user = User(
            id=uuid.uuid4().hex,
            issuer=issuer,
            subject=subject,
            name=name,
            email=email,
            email_verified=email_verified,
            picture=picture,
            created_at=self.clock(),
        )
        self._users[user.id] = user
        return user

    async def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def find_user_by_verified_email(self, email: str) -> User | None:
        wanted = _email_key(email)
        found = [
            u
            for u in self._users.values()
            if u.email_verified and u.email is not None and _email_key(u.email) == wanted
        ]
        return min(found, key=lambda u: (u.created_at, u.id), default=None)

    async def list_users(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: (u.created_at, u.id))

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        user = self._users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        self._users[user_id] = replace(user, disabled=disabled)

    # sessions

    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]:
        secret = new_secret()
        now = self.clock()
        session = Session(digest(secret), user_id, created_at=now, expires_at=now + ttl)
        self._sessions[session.id] = session
        return session, secret

    async def get_session(self, secret: str) -> Session | None:
        session = self._sessions.get(digest(secret))
        if session is None or session.revoked or session.expires_at <= self.clock():
            return None
        return session

    async def revoke_session(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            self._sessions[session_id] = replace(session, revoked=True)

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        now = self.clock()
        revoked = []
        for session in list(self._sessions.values()):
            if session.user_id == user_id and not session.revoked and session.expires_at > now:
                self._sessions[session.id] = replace(session, revoked=True)
                revoked.append(session.id)
        return revoked

    # rooms and members

    async def create_room(self, room_id: str, title: str, owner_id: str) -> RoomRecord:
        if room_id in self._rooms:
            raise Conflict(f"room {room_id!r} exists")
        now = self.clock()
        room = RoomRecord(room_id, title, created_by=owner_id, created_at=now)
        self._rooms[room_id] = room
        self._members[room_id, owner_id] = Member(room_id, owner_id, Role.owner, now)
        return room

    async def get_room(self, room_id: str) -> RoomRecord | None:
        return self._rooms.get(room_id)

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        found = [
            (self._rooms[m.room_id], m.role)
            for m in self._members.values()
            if m.user_id == user_id and m.room_id in self._rooms
        ]
        return sorted(found, key=lambda pair: (pair[0].created_at, pair[0].id))

    async def count_rooms_created_by(self, user_id: str) -> int:
        return sum(1 for room in self._rooms.values() if room.created_by == user_id)

    async def rename_room(self, room_id: str, title: str) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"no room {room_id!r}")
        self._rooms[room_id] = replace(room, title=title)

    async def delete_room(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)
        for member_key in [k for k in self._members if k[0] == room_id]:
            del self._members[member_key]
        for key in [k for k, invite in self._invites.items() if invite.room_id == room_id]:
            del self._invites[key]
        for key in [k for k, e in self._tickets.items() if e.ticket.room_id == room_id]:
            del self._tickets[key]

    async def get_member(self, room_id: str, user_id: str) -> Member | None:
        return self._members.get((room_id, user_id))

    async def list_members(self, room_id: str) -> list[Member]:
        found = [m for m in self._members.values() if m.room_id == room_id]
        return sorted(found, key=lambda m: (m.added_at, m.user_id))

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        if room_id not in self._rooms:
            raise NotFound(f"no room {room_id!r}")
        return self._put_member(room_id, user_id, role, lower=True)

    def _put_member(self, room_id: str, user_id: str, role: Role, *, lower: bool) -> Member:
        current = self._members.get((room_id, user_id))
        if current is None:
            member = Member(room_id, user_id, role, self.clock())
        elif lower or role > current.role:
            member = replace(current, role=role)
        else:
            member = current
        self._members[room_id, user_id] = member
        return member

    async def remove_member(self, room_id: str, user_id: str) -> None:
        self._members.pop((room_id, user_id), None)

    # invites

    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]:
        if room_id not in self._rooms:
            raise NotFound(f"no room {room_id!r}")
        secret = new_secret()
        invite = Invite(uuid.uuid4().hex, room_id, role, created_by, self.clock() + ttl)
        self._invites[digest(secret)] = invite
        return invite, secret

    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        key = digest(secret)
        invite = self._invites.get(key)
        if invite is None:
            raise NotFound("unknown invite")
        if invite.used_by is not None or invite.expires_at <= self.clock():
            raise NotFound("invite used or expired")
        if invite.room_id not in self._rooms:
            raise NotFound("invite's room is gone")
        self._invites[key] = replace(invite, used_by=user_id)
        return self._put_member(invite.room_id, user_id, invite.role, lower=False)

    # personal API tokens

    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        secret = new_secret()
        token = ApiToken(uuid.uuid4().hex, user_id, name, created_at=self.clock())
        self._tokens[token.id] = (token, digest(secret))
        return token, secret

    async def find_api_token(self, secret: str) -> ApiToken | None:
        wanted = digest(secret)
        for token, token_digest in self._tokens.values():
            if token_digest == wanted and not token.revoked:
                stamped = replace(token, last_used_at=self.clock())
                self._tokens[token.id] = (stamped, token_digest)
                return stamped
        return None

    async def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        found = [t for t, _ in self._tokens.values() if t.user_id == user_id]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def revoke_api_token(self, token_id: str, user_id: str) -> None:
        entry = self._tokens.get(token_id)
        if entry is not None and entry[0].user_id == user_id:
            self._tokens[token_id] = (replace(entry[0], revoked=True), entry[1])

    # tickets

    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str:
        now = self.clock()
        for key in [k for k, e in self._tickets.items() if e.ticket.expires_at <= now]:
            del self._tickets[key]
        secret = new_secret()
        ticket = Ticket(user_id, room_id, doc, role_ceiling, now + ttl)
        self._tickets[digest(secret)] = _Ticket(ticket)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        entry = self._tickets.get(digest(secret))
        if entry is None or entry.used or entry.ticket.expires_at <= self.clock():
            return None
        entry.used = True
        return entry.ticket

    # cache

    async def cache_get(self, key: str) -> str | None:
        entry = self._cache.get(key)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    async def cache_set(self, key: str, value: str, ttl: float) -> None:
        now = self.clock()
        for stale in [k for k, (_, expires_at) in self._cache.items() if expires_at <= now]:
            del self._cache[stale]
        self._cache[key] = (value, now + ttl)

    async def cache_delete(self, key: str) -> None:
        self._cache.pop(key, None)

    # audit

    async def record(self, event: AuditEvent) -> None:
        detail = _json_copy(event.detail)
        self._audit.append(replace(event, id=len(self._audit) + 1, detail=detail))

    async def list_audit(
        self, *, room_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEvent]:
        found: list[AuditEvent] = []
        if limit <= 0:
            return found
        for event in reversed(self._audit):
            assert event.id is not None
            if before_id is not None and event.id >= before_id:
                continue
            if room_id is not None and event.room_id != room_id:
                continue
            found.append(replace(event, detail=_json_copy(event.detail)))
            if len(found) >= limit:
                break
        return found
