"""Invites in SQLite: the row keeps the code's digest; redeeming marks it used and adds the
member in one transaction."""

from __future__ import annotations

import uuid

import sqlite_utils

from collab.errors import NotFound
from collab.meta.base import Role, digest, new_secret
from collab.meta.invites import Invite
from collab.meta.rooms import Member
from collab.meta.sqlite.base import SQLiteKind, as_row
from collab.meta.sqlite.rooms import put_member, room_exists


class SQLiteInvites(SQLiteKind):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]:
        secret = new_secret()

        def _create(db: sqlite_utils.Database) -> Invite:
            if not room_exists(db, room_id):
                raise NotFound(f"no room {room_id!r}")
            invite = Invite(uuid.uuid4().hex, room_id, role, created_by, self.clock() + ttl)
            db.table("invites").insert(as_row(invite, digest=digest(secret)))
            return invite

        return await self._write(_create), secret

    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        def _redeem(db: sqlite_utils.Database) -> Member:
            now = self.clock()
            row = db.execute(
                "SELECT i.id, i.room_id, i.role FROM invites i JOIN rooms r ON r.id = i.room_id"
                " WHERE i.digest=? AND i.used_by IS NULL AND i.expires_at>?",
                (digest(secret), now),
            ).fetchone()
            if row is None:
                raise NotFound("unknown, used or expired invite")
            db.execute("UPDATE invites SET used_by=?, used_at=? WHERE id=?", (user_id, now, row[0]))
            return put_member(db, self.clock, row[1], user_id, Role[row[2]], lower=False)

        return await self._write(_redeem)
