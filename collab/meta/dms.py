"""Direct messages: a private room of exactly two users, one per unordered pair.

A DM is a room (``RoomRecord.kind == "dm"``) with the same chat and docs as any other, keyed by
its two user ids (``rooms.dm_key``). Opening one is idempotent and race-safe: the lookup and the
creation are one step (one transaction in SQLite, whose unique index on ``dm_key`` backs it),
so two opens at once, A->B and B->A alike, yield one room. Both users are editors; a DM has no
owner and never gains or loses a member (``Rooms`` refuses, errors.Conflict). A DM is not
counted against ``max_rooms_per_user`` nor listed with the rooms.
"""

from __future__ import annotations

from typing import Protocol

from collab.meta.rooms import RoomRecord


class Dms(Protocol):
    async def open_dm(self, opener: str, peer: str, room_id: str) -> tuple[RoomRecord, bool]:
        """The DM between ``opener`` and ``peer``, and whether this call created it (then
        with the id ``room_id``, created by ``opener``, both users editors). ValueError when
        they are the same user; errors.Conflict when ``room_id`` is another room's."""

    async def find_dm(self, user_a: str, user_b: str) -> RoomRecord | None:
        """The DM between these two users, if there is one."""

    async def list_dms_for(self, user_id: str) -> list[RoomRecord]:
        """The DMs the user is in, oldest first (``RoomRecord.dm_peer`` names the other)."""
