"""Chat messages in memory: per room, a list in seq order (seq n at index n - 1).

A write's webhook deliveries are built before the write changes anything, and stored with its
row (``collab.meta.memory.webhooks``): a write whose ``WebhookOutbox`` raises leaves no trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from collab.errors import Conflict, NotFound
from collab.meta.memory.base import MemoryKind, drop_inbox_entries
from collab.meta.memory.webhooks import outbox_deliveries, put_deliveries
from collab.meta.messages import (
    DELETED_PARENT,
    Message,
    NewMessage,
    ThreadProblem,
    WebhookOutbox,
    Written,
    reactions_after,
)
from collab.meta.webhooks import Delivery


class MemoryMessages(MemoryKind):
    def _room(self, room_id: str) -> list[Message]:
        return self.tables.messages.setdefault(room_id, [])

    def _find(self, room_id: str, message_id: str) -> Message | None:
        seq = self.tables.message_seqs.get((room_id, message_id))
        return None if seq is None else self._room(room_id)[seq - 1]

    def _existing(self, room_id: str, message_id: str) -> Message:
        found = self._find(room_id, message_id)
        if found is None:
            raise NotFound("no such message")
        return found

    def _put(self, message: Message) -> Message:
        self._room(message.room_id)[message.seq - 1] = message
        return message

    def _deliveries(self, outbox: WebhookOutbox | None, message: Message) -> list[Delivery]:
        return [] if outbox is None else outbox_deliveries(self.tables, outbox, message)

    def _enqueue(self, outbox: WebhookOutbox | None, made: list[Delivery]) -> None:
        """Store the deliveries built for a write that has changed its rows, and tell."""
        put_deliveries(self.tables, made)
        if outbox is not None and made:
            outbox.enqueued(made)

    async def post_message(
        self, new: NewMessage, written: Written | None = None, outbox: WebhookOutbox | None = None
    ) -> tuple[Message, bool]:
        t = self.tables
        known = t.message_clients.get((new.room_id, new.author, new.client_id))
        if known is not None:
            return _told(written, self._existing(new.room_id, known)), False
        parents: list[Message] = []
        if new.thread is not None:
            parent = self._find(new.room_id, new.thread)
            if parent is None or parent.thread is not None:
                raise ThreadProblem(missing=parent is None)
            if parent.deleted:
                raise Conflict(DELETED_PARENT)
            parents.append(
                replace(parent, reply_count=parent.reply_count + 1, last_reply_at=new.created_at)
            )
        room = self._room(new.room_id)
        message = Message(
            new.room_id,
            len(room) + 1,
            new.id,
            new.author,
            new.author_name,
            new.author_handle,
            new.client_id,
            new.text,
            new.created_at,
            new.thread,
            mentions=new.mentions,
            attachments=new.attachments,
        )
        made = self._deliveries(outbox, message)
        for parent in parents:
            self._put(parent)
        room.append(message)
        t.message_seqs[(new.room_id, new.id)] = message.seq
        t.message_clients[(new.room_id, new.author, new.client_id)] = new.id
        if written is not None:
            written.rows([*parents, message])
        self._enqueue(outbox, made)
        return message, True

    async def get_message(self, room_id: str, message_id: str) -> Message | None:
        return self._find(room_id, message_id)

    async def posted_message(self, room_id: str, author: str, client_id: str) -> Message | None:
        known = self.tables.message_clients.get((room_id, author, client_id))
        return None if known is None else self._find(room_id, known)

    async def edit_message(
        self,
        room_id: str,
        message_id: str,
        text: str,
        at: float,
        mentions: Sequence[str] | None = None,
        written: Written | None = None,
        outbox: WebhookOutbox | None = None,
    ) -> Message:
        current = self._existing(room_id, message_id)
        if current.deleted:
            raise Conflict("the message was deleted")
        mentioned = current.mentions if mentions is None else tuple(mentions)
        edited = replace(current, text=text, edited_at=at, mentions=mentioned)
        made = self._deliveries(outbox, edited)
        _told(written, self._put(edited))
        self._enqueue(outbox, made)
        return edited

    async def delete_message(
        self,
        room_id: str,
        message_id: str,
        at: float,
        written: Written | None = None,
        outbox: WebhookOutbox | None = None,
    ) -> Message:
        current = self._existing(room_id, message_id)
        if current.deleted:
            return _told(written, current)
        tombstone = replace(
            current, text="", deleted=True, edited_at=at, reactions={}, mentions=(), attachments=()
        )
        made = self._deliveries(outbox, tombstone)
        # Its mentions went with its text: so do the inbox entries they made.
        drop_inbox_entries(
            self.tables, lambda e: (e.room_id, e.message_id) == (room_id, message_id)
        )
        _told(written, self._put(tombstone))
        self._enqueue(outbox, made)
        return tombstone

    async def react(
        self,
        room_id: str,
        message_id: str,
        emoji: str,
        user_id: str,
        add: bool,
        written: Written | None = None,
    ) -> Message:
        current = self._existing(room_id, message_id)
        if current.deleted and add:
            raise Conflict("the message was deleted")
        reactions = reactions_after(current.reactions, emoji, user_id, add)
        return _told(written, self._put(replace(current, reactions=reactions)))

    async def list_messages(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[Message]:
        found = [m for m in self._room(room_id) if thread is None or m.thread == thread]
        if after_seq is not None:
            return [m for m in found if m.seq > after_seq][:limit]
        if before_seq is not None:
            found = [m for m in found if m.seq < before_seq]
        return found[-limit:] if limit > 0 else []

    async def last_seq(self, room_id: str) -> int:
        return len(self._room(room_id))

    async def archive_messages(
        self, room_id: str, through_seq: int, since_seq: int = 0, *, keep: int | None = None
    ) -> None:
        if keep is not None:
            through_seq = max(through_seq, len(self._room(room_id)) - keep)
        for message in self._room(room_id)[since_seq:]:
            archived = message.seq <= through_seq
            if message.archived != archived and (archived or keep is not None):
                self._put(replace(message, archived=archived))


def _told(written: Written | None, message: Message) -> Message:
    """Tell ``written`` the one row a write changed (memory: nothing can roll it back)."""
    if written is not None:
        written.rows([message])
    return message
