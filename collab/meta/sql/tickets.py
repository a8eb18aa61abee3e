"""Tickets: consuming one is a single ``UPDATE ... RETURNING`` that also checks the
credential that minted it is still live."""

from __future__ import annotations

from collab.meta.base import Role, digest, new_secret
from collab.meta.sql.base import SqlKind, Tx
from collab.meta.tickets import Ticket

_CONSUME = """
UPDATE tickets SET used=TRUE
WHERE digest=? AND NOT used AND expires_at>?
  AND (session_id IS NULL
       OR session_id IN (SELECT id FROM sessions WHERE NOT revoked AND expires_at>?))
  AND (api_token_id IS NULL OR api_token_id IN (SELECT id FROM api_tokens WHERE NOT revoked))
RETURNING user_id, room_id, doc, role_ceiling, expires_at, session_id, api_token_id
"""


class SqlTickets(SqlKind):
    async def create_ticket(
        self,
        user_id: str,
        room_id: str,
        doc: str | None,
        role_ceiling: Role | None,
        ttl: float,
        *,
        session_id: str | None = None,
        api_token_id: str | None = None,
    ) -> str:
        secret = new_secret()

        def _create(db: Tx) -> None:
            now = self.clock()
            db.execute("DELETE FROM tickets WHERE expires_at<=?", (now,))
            db.execute(
                "INSERT INTO tickets (digest, user_id, room_id, doc, role_ceiling, expires_at,"
                " session_id, api_token_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest(secret),
                    user_id,
                    room_id,
                    doc,
                    role_ceiling.name if role_ceiling is not None else None,
                    now + ttl,
                    session_id,
                    api_token_id,
                ),
            )

        await self._write(_create)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        def _consume(db: Tx) -> Ticket | None:
            now = self.clock()
            row = db.execute(_CONSUME, (digest(secret), now, now)).fetchone()
            if row is None:
                return None
            session_end = None
            if row[5] is not None:
                found = db.execute("SELECT expires_at FROM sessions WHERE id=?", (row[5],))
                session_end = found.fetchone()[0]
            ceiling = Role[row[3]] if row[3] is not None else None
            return Ticket(row[0], row[1], row[2], ceiling, row[4], row[5], row[6], session_end)

        return await self._write(_consume)
