"""Invites in memory, keyed by the digest of the code."""

from __future__ import annotations

import uuid
from dataclasses import replace

from collab.errors import NotFound
from collab.meta.base import Role, digest, new_secret
from collab.meta.invites import ClosedReason, Invite, grantable, same_email
from collab.meta.memory.base import MemoryKind
from collab.meta.memory.rooms import put_member, refuse_dm
from collab.meta.rooms import Member


class MemoryInvites(MemoryKind):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float, *, email: str | None = None
    ) -> tuple[Invite, str]:
        if room_id not in self.tables.rooms:
            raise NotFound(f"no room {room_id!r}")
        refuse_dm(self.tables, room_id)
        now = self.clock()
        invites = self.tables.invites
        if email is not None:
            for key, old in list(invites.items()):
                if old.room_id == room_id and same_email(old.email, email):
                    if old.status(now) == "pending":
                        invites[key] = replace(old, closed_at=now, closed_reason="replaced")
        secret = new_secret()
        invite = Invite(
            uuid.uuid4().hex, room_id, role, created_by, now + ttl, email=email, created_at=now
        )
        invites[digest(secret)] = invite
        return invite, secret

    async def find_invite(self, secret: str) -> Invite | None:
        return self.tables.invites.get(digest(secret))

    async def get_invite(self, invite_id: str) -> Invite | None:
        return self._by_id(invite_id)[1]

    def _by_id(self, invite_id: str) -> tuple[str, Invite | None]:
        for key, invite in self.tables.invites.items():
            if invite.id == invite_id:
                return key, invite
        return "", None

    async def list_invites(self, room_id: str) -> list[Invite]:
        found = [i for i in self.tables.invites.values() if i.room_id == room_id]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    async def invites_for_email(self, email: str) -> list[Invite]:
        now, rooms = self.clock(), self.tables.rooms
        found = [
            i
            for i in self.tables.invites.values()
            if same_email(i.email, email) and i.status(now) == "pending" and i.room_id in rooms
        ]
        return sorted(found, key=lambda i: (i.created_at, i.id))

    async def redeem_invite(
        self, secret: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        return self._redeem(digest(secret), user_id, creator_is_admin)

    async def redeem_invite_by_id(
        self, invite_id: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        return self._redeem(self._by_id(invite_id)[0], user_id, creator_is_admin)

    def _redeem(self, key: str, user_id: str, admin: bool) -> Member:
        """The one redeem: pending, unexpired, its room alive, its creator still able to grant."""
        t, now = self.tables, self.clock()
        invite = t.invites.get(key)
        if invite is None or invite.status(now) != "pending" or invite.room_id not in t.rooms:
            raise NotFound("unknown, used or expired invite")
        refuse_dm(t, invite.room_id)
        creator = t.members.get((invite.room_id, invite.created_by))
        ceiling = grantable(Role.owner if admin else creator.role if creator else None)
        if ceiling is None:
            raise NotFound("unknown, used or expired invite")
        t.invites[key] = replace(invite, used_by=user_id, used_at=now)
        granted = min(invite.role, ceiling)
        return put_member(t, lambda: now, invite.room_id, user_id, granted, lower=False)

    async def close_invite(self, invite_id: str, reason: ClosedReason) -> Invite:
        key, invite = self._by_id(invite_id)
        now = self.clock()
        if invite is None or invite.status(now) != "pending":
            raise NotFound("no such pending invite")
        closed = replace(invite, closed_at=now, closed_reason=reason)
        self.tables.invites[key] = closed
        return closed
