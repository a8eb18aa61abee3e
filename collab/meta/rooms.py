"""Rooms and their members: who may do what in a room is the role of their membership.

A room is created with its owner in one step, and deleting it deletes its members, invites and
tickets with it (in the same transaction, in SQLite), so a room re-created under the same id
starts clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collab.meta.base import Role


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


class Rooms(Protocol):
    async def create_room(self, room_id: str, title: str, owner_id: str) -> RoomRecord:
        """Create the room and make ``owner_id`` its owner, atomically; Conflict if it exists."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        """The user's rooms with their role there, oldest room first."""

    async def count_rooms_created_by(self, user_id: str) -> int: ...

    async def rename_room(self, room_id: str, title: str) -> None:
        """errors.NotFound when there is no such room."""

    async def delete_room(self, room_id: str) -> None:
        """Delete the room with its members, invites and tickets (idempotent)."""

    async def get_member(self, room_id: str, user_id: str) -> Member | None: ...

    async def list_members(self, room_id: str) -> list[Member]:
        """The room's members, earliest added first."""

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        """Add or change a membership (may lower a role; keeps added_at); errors.NotFound
        when there is no such room."""

    async def remove_member(self, room_id: str, user_id: str) -> None:
        """Remove a membership (idempotent)."""
