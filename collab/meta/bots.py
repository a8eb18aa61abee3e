"""Bots made through the API: which room made each (its owners manage it there).

The bot itself is a user (issuer ``collab:bot``) and a member of the room; this record only
ties it to the room that made it, so that room's owners may list it, mint its tokens and
remove it, and no other room's may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BotRecord:
    user_id: str
    room_id: str
    name: str
    created_by: str
    created_at: float


class Bots(Protocol):
    async def add_bot(self, bot: BotRecord) -> None:
        """Record a bot (errors.Conflict when its user id is already a bot)."""

    async def get_bot(self, room_id: str, user_id: str) -> BotRecord | None:
        """The bot ``user_id`` if ``room_id`` made it."""

    async def list_bots(self, room_id: str) -> list[BotRecord]:
        """The bots the room made, oldest first."""

    async def remove_bot(self, room_id: str, user_id: str) -> None:
        """Forget the bot (idempotent)."""
