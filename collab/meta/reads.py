"""Read markers: per user per room, the highest ``seq`` the user has read, and unread counts.

A marker only moves forward: a lower value leaves it where it is (and is answered with where it
is), and a value past the room's last message is clamped to it. Moving a marker also marks read
the user's inbox entries (``collab.meta.inbox``) of that room at or below it, in the same step.
Whether a marker is public (mirrored into the ``chat`` doc's ``reads``) is the user's setting;
this store keeps every marker and says nothing of who sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_UNREAD = 1000  # counts stop here: a client shows "999+" (bounded work per room listed)


@dataclass(frozen=True)
class ReadMarker:
    room_id: str
    user_id: str
    up_to: int
    updated_at: float = 0.0


@dataclass(frozen=True)
class Unread:
    """A room as one user sees it in their list: messages after their marker (not theirs, not
    deleted), and their unread inbox entries there, each at most ``MAX_UNREAD``."""

    unread: int = 0
    mentions: int = 0


class Reads(Protocol):
    async def set_read_markers(self, room_id: str, wanted: Mapping[str, int]) -> dict[str, int]:
        """Move each user's marker forward to the wanted seq (clamped to 0..the room's last
        seq; lower than the marker: unchanged) and mark read their inbox entries of the room
        at or below it, in one step. Returns each user's marker afterwards."""

    async def get_read_marker(self, room_id: str, user_id: str) -> int:
        """The user's marker in the room (0: none)."""

    async def list_read_markers(self, room_id: str) -> list[ReadMarker]:
        """The markers of the room's current members, by user id (0 markers left out)."""

    async def list_read_markers_of(self, room_ids: Sequence[str]) -> dict[str, list[ReadMarker]]:
        """``list_read_markers`` of each of these rooms (every one a key, maybe with none), in
        one query per 500 rooms: what a node's recheck of its loaded chat docs reads
        (``collab.chat.readnodes``)."""

    async def unread_counts(self, user_id: str, room_ids: Sequence[str]) -> dict[str, Unread]:
        """For each room: how many messages after the user's marker are not theirs and not
        deleted, and how many of their inbox entries there are unread (both capped at
        ``MAX_UNREAD``). One query for the whole list."""
