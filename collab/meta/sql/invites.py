"""Invites: the row keeps the code's digest; redeeming checks the invite and its
creator's current role, marks it used and adds the member in one transaction."""

from __future__ import annotations

import uuid
from typing import Any

from collab.errors import NotFound
from collab.meta.base import Role, digest, new_secret
from collab.meta.invites import ClosedReason, Invite, grantable
from collab.meta.rooms import Member
from collab.meta.sql.base import SqlKind, Tx, as_row, insert
from collab.meta.sql.rooms import put_member, refuse_dm, room_exists

_INVITE = (
    "id, room_id, role, created_by, expires_at, used_by, email, created_at, used_at,"
    " closed_at, closed_reason"
)
_PENDING = "used_by IS NULL AND closed_reason IS NULL AND expires_at>?"


def _invite(row: tuple[Any, ...]) -> Invite:
    i, room, role, by, expires, used_by, email, created, used_at, closed_at, reason = row
    return Invite(
        i, room, Role[role], by, expires, used_by, email, created, used_at, closed_at, reason
    )


def _redeem(db: Tx, now: float, where: str, key: str, user_id: str, admin: bool) -> Member:
    """The one redeem: pending, unexpired, its room alive, its creator still able to grant."""
    row = db.execute(
        f"SELECT i.id, i.room_id, i.role, i.created_by FROM invites i"
        f" JOIN rooms r ON r.id = i.room_id WHERE i.{where}=? AND i.used_by IS NULL"
        f" AND i.closed_reason IS NULL AND i.expires_at>?",
        (key, now),
    ).fetchone()
    if row is None:
        raise NotFound("unknown, used or expired invite")
    invite_id, room_id, role, created_by = row
    refuse_dm(db, room_id)
    creator = db.execute(
        "SELECT role FROM members WHERE room_id=? AND user_id=?", (room_id, created_by)
    ).fetchone()
    ceiling = grantable(Role.owner if admin else Role[creator[0]] if creator else None)
    if ceiling is None:
        raise NotFound("unknown, used or expired invite")
    db.execute("UPDATE invites SET used_by=?, used_at=? WHERE id=?", (user_id, now, invite_id))
    granted = min(Role[role], ceiling)
    return put_member(db, lambda: now, room_id, user_id, granted, lower=False)


class SqlInvites(SqlKind):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float, *, email: str | None = None
    ) -> tuple[Invite, str]:
        secret = new_secret()

        def _create(db: Tx) -> Invite:
            if not room_exists(db, room_id):
                raise NotFound(f"no room {room_id!r}")
            refuse_dm(db, room_id)
            now = self.clock()
            if email is not None:
                db.execute(
                    "UPDATE invites SET closed_at=?, closed_reason='replaced'"
                    f" WHERE room_id=? AND {db.dialect.nocase_equals('email')} AND {_PENDING}",
                    (now, room_id, email, now),
                )
            invite = Invite(
                uuid.uuid4().hex, room_id, role, created_by, now + ttl, email=email, created_at=now
            )
            insert(db, "invites", as_row(invite, digest=digest(secret)))
            return invite

        return await self._write(_create), secret

    async def find_invite(self, secret: str) -> Invite | None:
        rows = await self._read(f"SELECT {_INVITE} FROM invites WHERE digest=?", (digest(secret),))
        return _invite(rows[0]) if rows else None

    async def get_invite(self, invite_id: str) -> Invite | None:
        rows = await self._read(f"SELECT {_INVITE} FROM invites WHERE id=?", (invite_id,))
        return _invite(rows[0]) if rows else None

    async def list_invites(self, room_id: str) -> list[Invite]:
        rows = await self._read(
            f"SELECT {_INVITE} FROM invites WHERE room_id=? ORDER BY created_at, id",
            (room_id,),
        )
        return [_invite(row) for row in rows]

    async def invites_for_email(self, email: str) -> list[Invite]:
        # ASCII case folding, as the memory twin does (base.Dialect.nocase_equals).
        rows = await self._read(
            f"SELECT {_INVITE} FROM invites WHERE {self.dialect.nocase_equals('email')}"
            f" AND {_PENDING}"
            " AND room_id IN (SELECT id FROM rooms) ORDER BY created_at, id",
            (email, self.clock()),
        )
        return [_invite(row) for row in rows]

    async def redeem_invite(
        self, secret: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        key = digest(secret)
        return await self._write(
            lambda db: _redeem(db, self.clock(), "digest", key, user_id, creator_is_admin)
        )

    async def redeem_invite_by_id(
        self, invite_id: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        return await self._write(
            lambda db: _redeem(db, self.clock(), "id", invite_id, user_id, creator_is_admin)
        )

    async def close_invite(self, invite_id: str, reason: ClosedReason) -> Invite:
        def _close(db: Tx) -> Invite:
            now = self.clock()
            row = db.execute(
                f"UPDATE invites SET closed_at=?, closed_reason=? WHERE id=? AND {_PENDING}"
                f" RETURNING {_INVITE}",
                (now, reason, invite_id, now),
            ).fetchone()
            if row is None:
                raise NotFound("no such pending invite")
            return _invite(row)

        return await self._write(_close)
