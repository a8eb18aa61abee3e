"""Invites in memory, keyed by the digest of the code."""

from __future__ import annotations

import uuid
from dataclasses import replace

from collab.errors import NotFound
from collab.meta.base import Role, digest, new_secret
from collab.meta.invites import Invite
from collab.meta.memory.base import MemoryKind
from collab.meta.memory.rooms import put_member
from collab.meta.rooms import Member


class MemoryInvites(MemoryKind):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float
    ) -> tuple[Invite, str]:
        if room_id not in self.tables.rooms:
            raise NotFound(f"no room {room_id!r}")
        secret = new_secret()
        invite = Invite(uuid.uuid4().hex, room_id, role, created_by, self.clock() + ttl)
        self.tables.invites[digest(secret)] = invite
        return invite, secret

    async def redeem_invite(self, secret: str, user_id: str) -> Member:
        key = digest(secret)
        invite = self.tables.invites.get(key)
        if invite is None:
            raise NotFound("unknown invite")
        if invite.used_by is not None or invite.expires_at <= self.clock():
            raise NotFound("invite used or expired")
        if invite.room_id not in self.tables.rooms:
            raise NotFound("invite's room is gone")
        self.tables.invites[key] = replace(invite, used_by=user_id)
        return put_member(
            self.tables, self.clock, invite.room_id, user_id, invite.role, lower=False
        )
