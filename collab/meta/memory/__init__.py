"""MemoryMetaStore: the in-process twin (``memory://``) the contract suite also runs against.

Each record kind (``users``, ``sessions``, ``rooms``, ...) is a class of its own over shared
``Tables``; this composite inherits them all, so callers keep one ``meta`` object.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from collab.meta.memory.api_tokens import MemoryApiTokens
from collab.meta.memory.audit import MemoryAudit
from collab.meta.memory.base import Tables
from collab.meta.memory.bots import MemoryBots, MemoryIncomingHooks
from collab.meta.memory.cache import MemoryCache
from collab.meta.memory.dms import MemoryDms
from collab.meta.memory.doc_meta import MemoryDocMetas
from collab.meta.memory.files import MemoryFiles
from collab.meta.memory.inbox import MemoryInbox
from collab.meta.memory.invites import MemoryInvites
from collab.meta.memory.messages import MemoryMessages
from collab.meta.memory.purge import MemoryPurge
from collab.meta.memory.reads import MemoryReads
from collab.meta.memory.room_tokens import MemoryRoomTokenRevocations
from collab.meta.memory.rooms import MemoryRooms
from collab.meta.memory.sessions import MemorySessions
from collab.meta.memory.tickets import MemoryTickets
from collab.meta.memory.users import MemoryUsers
from collab.meta.memory.webhooks import MemoryWebhooks

__all__ = ["MemoryMetaStore"]


class MemoryMetaStore(
    MemoryUsers,
    MemorySessions,
    MemoryRooms,
    MemoryDms,
    MemoryInvites,
    MemoryDocMetas,
    MemoryMessages,
    MemoryFiles,
    MemoryReads,
    MemoryInbox,
    MemoryApiTokens,
    MemoryTickets,
    MemoryRoomTokenRevocations,
    MemoryCache,
    MemoryAudit,
    MemoryPurge,
    MemoryBots,
    MemoryIncomingHooks,
    MemoryWebhooks,
):
    """Keeps everything in dicts; lost on exit. ``clock`` is injectable for expiry tests."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(Tables(), clock=clock)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None
