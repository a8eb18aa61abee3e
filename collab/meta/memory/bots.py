"""Bots and incoming webhooks in memory."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import replace

from collab.errors import Conflict
from collab.meta.base import digest, new_secret
from collab.meta.bots import BotRecord
from collab.meta.incoming_hooks import IncomingHook
from collab.meta.memory.base import MemoryKind


class MemoryBots(MemoryKind):
    async def add_bot(self, bot: BotRecord) -> None:
        if bot.user_id in self.tables.bots:
            raise Conflict("already a bot")
        self.tables.bots[bot.user_id] = bot

    async def get_bot(self, room_id: str, user_id: str) -> BotRecord | None:
        found = self.tables.bots.get(user_id)
        return found if found is not None and found.room_id == room_id else None

    async def list_bots(self, room_id: str) -> list[BotRecord]:
        found = [b for b in self.tables.bots.values() if b.room_id == room_id]
        return sorted(found, key=lambda b: (b.created_at, b.user_id))

    async def remove_bot(self, room_id: str, user_id: str) -> None:
        if await self.get_bot(room_id, user_id) is not None:
            del self.tables.bots[user_id]


class MemoryIncomingHooks(MemoryKind):
    async def create_incoming_hook(
        self, room_id: str, bot_id: str, name: str, created_by: str
    ) -> tuple[IncomingHook, str]:
        secret = new_secret()
        hook = IncomingHook(uuid.uuid4().hex, room_id, bot_id, name, created_by, self.clock())
        self.tables.incoming_hooks[hook.id] = (hook, digest(secret))
        return hook, secret

    async def find_incoming_hook(
        self, hook_id: str, secret: str
    ) -> tuple[IncomingHook, bool] | None:
        entry = self.tables.incoming_hooks.get(hook_id)
        if entry is None or entry[0].revoked:
            return None
        hook, stored = entry
        if not hmac.compare_digest(stored, digest(secret)):
            return hook, False
        hook = replace(hook, last_used_at=self.clock())
        self.tables.incoming_hooks[hook_id] = (hook, stored)
        return hook, True

    async def list_incoming_hooks(self, room_id: str) -> list[IncomingHook]:
        found = [h for h, _ in self.tables.incoming_hooks.values() if h.room_id == room_id]
        return sorted(found, key=lambda h: (h.created_at, h.id))

    async def revoke_incoming_hook(self, room_id: str, hook_id: str) -> IncomingHook | None:
        entry = self.tables.incoming_hooks.get(hook_id)
        if entry is None or entry[0].room_id != room_id:
            return None
        hook = entry[0] if entry[0].revoked else replace(entry[0], revoked_at=self.clock())
        self.tables.incoming_hooks[hook_id] = (hook, entry[1])
        return hook
