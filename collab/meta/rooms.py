"""Rooms and their members: who may do what in a room is the role of their membership.

A room is created with its owner in one step, and deleting it deletes its members, invites and
tickets with it (in the same transaction, in SQLite), so a room re-created under the same id
starts clean. Its audit rows stay (the site's history), but a room sees only the rows newer
than its own creation: ``audit_floor`` is the highest audit id that existed then.

Membership changes that an owner makes go through :meth:`Rooms.update_member`, which checks
"a room keeps at least one owner" and writes in one step (one transaction in SQLite), so two
owners demoting each other at once cannot both succeed; a demotion or removal voids the
invites the member created, in the same step.

A room is of a ``kind``: ``room``, or ``dm``, a direct message between two users
(``collab.meta.dms``): its two members are editors, it has no owner, and nobody is added,
removed or has their role changed there (errors.Conflict, :data:`DM_MEMBERS`), nor invited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from collab.errors import LimitReached, Quota
from collab.meta.audit import AuditEvent
from collab.meta.base import Role

RoomKind = Literal["room", "dm"]
DM_MEMBERS = "a direct message has exactly two members"


@dataclass(frozen=True)
class RoomRecord:
    id: str
    title: str
    created_by: str
    created_at: float
    gc: bool = True
    audit_floor: int = 0  # audit rows with a larger id are this room's
    kind: RoomKind = "room"
    dm_key: str | None = None  # a DM's two user ids, sorted, joined by a space (dm_key())

    @property
    def is_dm(self) -> bool:
        return self.kind == "dm"

    def dm_peer(self, user_id: str) -> str | None:
        """In a DM, the user who is not ``user_id`` (None outside a DM or for a stranger)."""
        if self.dm_key is None:
            return None
        a, b = self.dm_key.split(" ")
        return b if user_id == a else a if user_id == b else None


def room_limit() -> LimitReached:
    """The refusal of a room past ``max_rooms_per_user`` (the socket's close reason)."""
    return LimitReached(Quota.rooms_per_user, "room limit reached")


def dm_key(user_a: str, user_b: str) -> str:
    """The key of the DM between two users: the same whichever opens it."""
    return " ".join(sorted((user_a, user_b)))


@dataclass(frozen=True)
class Member:
    room_id: str
    user_id: str
    role: Role
    added_at: float = 0.0


@dataclass(frozen=True)
class MemberChange:
    """What :meth:`Rooms.update_member` did: the membership before and after (None: removed),
    and how many pending invites the member had created that it voided."""

    previous: Member
    current: Member | None
    voided_invites: int = 0


class Rooms(Protocol):
    async def create_room(
        self, room_id: str, title: str, owner_id: str, *, max_rooms: int | None = None
    ) -> RoomRecord:
        """Create the room and make ``owner_id`` its owner, atomically; Conflict if it exists.
        With ``max_rooms``: LimitReached (``rooms_per_user``) when ``owner_id`` created that many
        rooms already, counted in the same step as the insert, so creates racing each other
        (on several nodes too) cannot together pass the cap (:func:`room_limit`)."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...

    async def existing_rooms(self, room_ids: set[str]) -> set[str]:
        """Which of ``room_ids`` (rooms and DMs) the store still has: one query per 500."""

    async def list_rooms_for(self, user_id: str) -> list[tuple[RoomRecord, Role]]:
        """The user's rooms (not DMs: ``Dms.list_dms_for``) with their role there, oldest
        room first."""

    async def count_rooms_created_by(self, user_id: str) -> int:
        """How many rooms (not DMs) the user created: ``max_rooms_per_user``."""

    async def list_room_ids(self, after: str = "", limit: int = 1000) -> list[str]:
        """Every room's id, in order, the first ``limit`` after ``after`` (a search rebuild
        pages through them)."""

    async def rename_room(self, room_id: str, title: str) -> None:
        """errors.NotFound when there is no such room."""

    async def delete_room(self, room_id: str, event: AuditEvent | None = None) -> None:
        """Delete the room with its members, invites and tickets (idempotent), recording
        ``event`` in the same step: recorded later, it could land after a re-creation of the
        id and be shown to the new room."""

    async def get_member(self, room_id: str, user_id: str) -> Member | None: ...

    async def list_members(self, room_id: str) -> list[Member]:
        """The room's members, earliest added first."""

    async def set_member(self, room_id: str, user_id: str, role: Role) -> Member:
        """Add or change a membership (may lower a role; keeps added_at); errors.NotFound
        when there is no such room. Checks nothing else: the API uses ``add_member`` and
        ``update_member``. errors.Conflict in a DM."""

    async def add_member(self, room_id: str, user_id: str, role: Role) -> Member:
        """Add a new member; errors.Conflict when already one or in a DM, errors.NotFound when
        there is no such room."""

    async def update_member(self, room_id: str, user_id: str, role: Role | None) -> MemberChange:
        """Change a member's role, or remove them (``role`` None), in one step that keeps an
        owner: errors.NotFound when not a member, errors.Conflict when the room would be left
        without an owner, or in a DM (whose two editors stay as they are, without an owner).
        A lower role or a removal voids their pending invites."""

    async def remove_member(self, room_id: str, user_id: str) -> None:
        """Remove a membership (idempotent; checks nothing: see ``update_member``)."""
