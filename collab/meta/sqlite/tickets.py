"""Tickets in SQLite: consuming one is a single ``UPDATE ... RETURNING``."""

from __future__ import annotations

import sqlite_utils

from collab.meta.base import Role, digest, new_secret
from collab.meta.sqlite.base import SQLiteKind, as_row
from collab.meta.tickets import Ticket


class SQLiteTickets(SQLiteKind):
    async def create_ticket(
        self, user_id: str, room_id: str, doc: str | None, role_ceiling: Role | None, ttl: float
    ) -> str:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> None:
            now = self.clock()
            db.execute("DELETE FROM tickets WHERE expires_at<=?", (now,))
            ticket = Ticket(user_id, room_id, doc, role_ceiling, now + ttl)
            db.table("tickets").insert(as_row(ticket, digest=digest(secret)))

        await self._write(_create)
        return secret

    async def consume_ticket(self, secret: str) -> Ticket | None:
        def _consume(db: sqlite_utils.Database) -> Ticket | None:
            row = db.execute(
                "UPDATE tickets SET used=1 WHERE digest=? AND NOT used AND expires_at>?"
                " RETURNING user_id, room_id, doc, role_ceiling, expires_at",
                (digest(secret), self.clock()),
            ).fetchone()
            if row is None:
                return None
            ceiling = Role[row[3]] if row[3] is not None else None
            return Ticket(row[0], row[1], row[2], ceiling, row[4])

        return await self._write(_consume)
