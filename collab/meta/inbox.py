"""The mention inbox: one entry per mentioned user per message.

Entries are made when a message mentions a user (``collab.chat.mentions`` decides who: members
of the room named by handle, or every member for ``@room``), at most once per user per message:
a mention an edit adds notifies, the same mention again never does. An entry is read when its
user marks it so, or when their read marker in its room moves past its message's ``seq``
(``collab.meta.reads``), or is made read when that marker reached a post's seq before its
entry was made (``read_if_marked``). What a user is shown is filtered when read: only entries
of rooms they are a member of now, and of messages that are not deleted (deleting a message
also deletes its entries). Ids only grow, so newest first is id order and a cursor stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from collab.meta.messages import Message


@dataclass(frozen=True)
class InboxEntry:
    id: int
    user_id: str
    room_id: str
    message_id: str
    seq: int  # the message's
    created_at: float
    read: bool = False


class Inbox(Protocol):
    async def add_inbox_entries(
        self, message: Message, user_ids: Iterable[str], at: float, *, read_if_marked: bool = False
    ) -> list[str]:
        """Notify each user of ``message`` (an entry each, unread), except those who already
        have an entry for it, read or not; returns the users newly notified. With
        ``read_if_marked`` (a post's mentions), an entry whose user's read marker in the room
        already reaches the message's seq is made read, in the same step: the marker moved
        past the message before its entries were made."""

    async def list_inbox(
        self,
        user_id: str,
        *,
        unread_only: bool = False,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[tuple[InboxEntry, Message]]:
        """The user's entries, newest first (ids below ``before_id``), each with its message:
        only rooms the user is a member of now, only messages not deleted."""

    async def mark_inbox_read(self, user_id: str, ids: Sequence[int] | None) -> int:
        """Mark the user's entries with these ids read (None: all of them); ids that are not
        the user's are ignored. Returns how many changed."""
