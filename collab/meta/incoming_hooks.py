"""Incoming webhooks: URLs whose secret lets an outside system post into a room's chat.

Each hook posts as its own bot (a member of the room). Only the secret's digest is stored;
``find_incoming_hook`` tells a wrong secret (the hook, and False) from a revoked or unknown
hook (None), which the route answers 401 and 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IncomingHook:
    id: str
    room_id: str
    bot_id: str
    name: str
    created_by: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class IncomingHooks(Protocol):
    async def create_incoming_hook(
        self, room_id: str, bot_id: str, name: str, created_by: str
    ) -> tuple[IncomingHook, str]:
        """A new hook and its secret (shown once: only its digest is stored)."""

    async def find_incoming_hook(
        self, hook_id: str, secret: str
    ) -> tuple[IncomingHook, bool] | None:
        """(the live hook, whether ``secret`` is its secret), stamping ``last_used_at`` when it
        is; None for an unknown or revoked hook."""

    async def list_incoming_hooks(self, room_id: str) -> list[IncomingHook]:
        """The room's hooks, revoked ones included, oldest first."""

    async def revoke_incoming_hook(self, room_id: str, hook_id: str) -> IncomingHook | None:
        """Revoke the room's hook (idempotent); None when the room has no such hook."""
