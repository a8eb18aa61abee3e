"""Sessions in memory, keyed by the digest of the cookie value."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from collab.meta.base import digest, new_secret
from collab.meta.memory.base import MemoryKind
from collab.meta.sessions import Session


class MemorySessions(MemoryKind):
    async def create_session(self, user_id: str, ttl: float) -> tuple[Session, str]:
        secret = new_secret()
        now = self.clock()
        session = Session(digest(secret), user_id, created_at=now, expires_at=now + ttl)
        self.tables.sessions[session.id] = session
        return session, secret

    async def get_session(self, secret: str) -> Session | None:
        session = self.tables.sessions.get(digest(secret))
        if session is None or session.revoked or session.expires_at <= self.clock():
            return None
        return session

    async def revoke_session(self, session_id: str) -> None:
        session = self.tables.sessions.get(session_id)
        if session is not None:
            self.tables.sessions[session_id] = replace(session, revoked=True)

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        now = self.clock()
        sessions = self.tables.sessions
        revoked = []
        for session in list(sessions.values()):
            if session.user_id == user_id and not session.revoked and session.expires_at > now:
                sessions[session.id] = replace(session, revoked=True)
                revoked.append(session.id)
        return revoked

    async def live_sessions(self, session_ids: Iterable[str]) -> set[str]:
        now = self.clock()
        found = set()
        for session_id in set(session_ids):
            session = self.tables.sessions.get(session_id)
            if session is not None and not session.revoked and session.expires_at > now:
                found.add(session_id)
        return found
