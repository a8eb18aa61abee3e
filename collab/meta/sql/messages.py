"""Chat messages (``migrations/sqlite/0005_chat.sql``).

A post's idempotency check, seq and parent update happen in one write transaction that nothing
interleaves with, so the seq is gapless and two posts of one client id store one row, from one
node or several. Every write of a room's messages names the room's ``serial`` key (``_chat``):
on PostgreSQL the room's writers queue on one lock instead of retrying each other. (The one
other writer of messages, a room's deletion, leaves the same rows in either order; the inbox
rows a message's deletion drops are only ever read joined with their message.)

A ``Written`` (``collab.meta.messages``) is told the rows a write changed: on SQLite from inside
the write's transaction (the group commit's ``then``: the chat doc's update commits with the
rows), and told if that transaction then fails; on PostgreSQL right after the commit.

A ``WebhookOutbox``'s deliveries are inserted by the write function itself, after the row
(``collab.meta.sql.webhooks.enqueue_outbox``): they commit with the row or not at all, and its
``enqueued`` is told what was made once the write has returned. The room's endpoints are read
under the room's key, in READ COMMITTED on PostgreSQL: an endpoint created, changed or
disabled meanwhile is seen or not, either order being a valid one (see
``collab.meta.sql.webhooks`` for one deleted meanwhile).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from collab.errors import Conflict, NotFound
from collab.meta.messages import (
    DELETED_PARENT,
    Message,
    NewMessage,
    ThreadProblem,
    WebhookOutbox,
    Written,
    reactions_after,
)
from collab.meta.sql.base import SqlKind, Tx
from collab.meta.sql.webhooks import enqueue_outbox
from collab.meta.webhooks import Delivery

COLUMNS = (
    "room_id, seq, id, author, author_name, author_handle, client_id, text, created_at, thread,"
    " edited_at, deleted, reactions, mentions, attachments, reply_count, last_reply_at, archived"
)


def message_record(row: tuple[Any, ...]) -> Message:
    (room, seq, i, author, name, handle, client, text, created, thread, edited, deleted) = row[:12]
    reactions, mentions, attachments, replies, last_reply, archived = row[12:]
    return Message(
        room,
        seq,
        i,
        author,
        name,
        handle,
        client,
        text,
        created,
        thread,
        edited,
        bool(deleted),
        {emoji: tuple(users) for emoji, users in json.loads(reactions).items()},
        tuple(json.loads(mentions)),
        tuple(json.loads(attachments)),
        replies,
        last_reply,
        bool(archived),
    )


def _chat(room_id: str) -> str:
    """The serial key of a room's messages."""
    return f"chat:{room_id}"


def _get(db: Tx, room_id: str, message_id: str) -> Message | None:
    row = db.execute(
        f"SELECT {COLUMNS} FROM messages WHERE room_id=? AND id=?", (room_id, message_id)
    ).fetchone()
    return message_record(row) if row else None


def _existing(db: Tx, room_id: str, message_id: str) -> Message:
    found = _get(db, room_id, message_id)
    if found is None:
        raise NotFound("no such message")
    return found


class _Enqueuing:
    """A write's ``WebhookOutbox`` share: what the last run of its function enqueued
    (PostgreSQL may run it more than once; each run starts afresh)."""

    def __init__(self, outbox: WebhookOutbox | None) -> None:
        self.outbox = outbox
        self.made: list[Delivery] = []

    def run(self, db: Tx, message: Message) -> None:
        """Enqueue the deliveries of ``message`` (the write's row, as it holds it)."""
        if self.outbox is not None:
            self.made = enqueue_outbox(db, self.outbox, message)

    def restart(self) -> None:
        self.made = []

    def tell(self) -> None:
        """Once the write returned: the outbox is told what it made."""
        if self.outbox is not None and self.made:
            self.outbox.enqueued(self.made)


class SqlMessages(SqlKind):
    async def _write_rows(
        self,
        room_id: str,
        fn: Callable[[Tx], list[Message]],
        written: Written | None,
        enqueuing: _Enqueuing | None = None,
    ) -> list[Message]:
        """``fn`` (which returns the rows it changed) as a write of the room's messages that
        tells ``written``, then ``enqueuing``'s outbox."""
        if written is None:
            rows = await self._write(fn, serial=_chat(room_id))
        else:
            rows = await self._write(
                fn, serial=_chat(room_id), then=written.rows, undo=written.rolled_back
            )
        if enqueuing is not None:
            enqueuing.tell()
        return rows

    async def post_message(
        self, new: NewMessage, written: Written | None = None, outbox: WebhookOutbox | None = None
    ) -> tuple[Message, bool]:
        created = False
        enqueuing = _Enqueuing(outbox)

        def _post(db: Tx) -> list[Message]:
            """[the parent, if a reply,] the message."""
            nonlocal created
            created = False  # PostgreSQL may run this again after a lost race
            enqueuing.restart()
            row = db.execute(
                f"SELECT {COLUMNS} FROM messages WHERE room_id=? AND author=? AND client_id=?",
                (new.room_id, new.author, new.client_id),
            ).fetchone()
            if row:
                return [message_record(row)]
            parents = []
            if new.thread is not None:
                parent = _get(db, new.room_id, new.thread)
                if parent is None or parent.thread is not None:
                    raise ThreadProblem(missing=parent is None)
                if parent.deleted:
                    raise Conflict(DELETED_PARENT)
                db.execute(
                    "UPDATE messages SET reply_count=reply_count+1, last_reply_at=?"
                    " WHERE room_id=? AND id=?",
                    (new.created_at, new.room_id, new.thread),
                )
                parents.append(_existing(db, new.room_id, new.thread))
            seq = db.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE room_id=?", (new.room_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO messages (room_id, seq, id, author, author_name, author_handle,"
                " client_id, text, created_at, thread, mentions, attachments)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.room_id,
                    seq,
                    new.id,
                    new.author,
                    new.author_name,
                    new.author_handle,
                    new.client_id,
                    new.text,
                    new.created_at,
                    new.thread,
                    json.dumps(list(new.mentions)),
                    json.dumps(list(new.attachments)),
                ),
            )
            created = True
            message = _existing(db, new.room_id, new.id)
            enqueuing.run(db, message)
            return [*parents, message]

        rows = await self._write_rows(new.room_id, _post, written, enqueuing)
        return rows[-1], created

    async def get_message(self, room_id: str, message_id: str) -> Message | None:
        rows = await self._lookup(
            f"SELECT {COLUMNS} FROM messages WHERE room_id=? AND id=?",
            (room_id, message_id),
        )
        return message_record(rows[0]) if rows else None

    async def posted_message(self, room_id: str, author: str, client_id: str) -> Message | None:
        rows = await self._lookup(
            f"SELECT {COLUMNS} FROM messages WHERE room_id=? AND author=? AND client_id=?",
            (room_id, author, client_id),
        )
        return message_record(rows[0]) if rows else None

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
        enqueuing = _Enqueuing(outbox)

        def _edit(db: Tx) -> list[Message]:
            enqueuing.restart()
            current = _existing(db, room_id, message_id)
            if current.deleted:
                raise Conflict("the message was deleted")
            mentioned = current.mentions if mentions is None else mentions
            db.execute(
                "UPDATE messages SET text=?, edited_at=?, mentions=? WHERE room_id=? AND id=?",
                (text, at, json.dumps(list(mentioned)), room_id, message_id),
            )
            edited = _existing(db, room_id, message_id)
            enqueuing.run(db, edited)
            return [edited]

        return (await self._write_rows(room_id, _edit, written, enqueuing))[0]

    async def delete_message(
        self,
        room_id: str,
        message_id: str,
        at: float,
        written: Written | None = None,
        outbox: WebhookOutbox | None = None,
    ) -> Message:
        enqueuing = _Enqueuing(outbox)

        def _delete(db: Tx) -> list[Message]:
            enqueuing.restart()
            if _existing(db, room_id, message_id).deleted:
                return [_existing(db, room_id, message_id)]
            db.execute(
                "UPDATE messages SET text='', deleted=TRUE, edited_at=?, reactions='{}',"
                " mentions='[]', attachments='[]' WHERE room_id=? AND id=?",
                (at, room_id, message_id),
            )
            # Its mentions went with its text: so do the inbox entries they made.
            db.execute("DELETE FROM inbox WHERE room_id=? AND message_id=?", (room_id, message_id))
            tombstone = _existing(db, room_id, message_id)
            enqueuing.run(db, tombstone)
            return [tombstone]

        return (await self._write_rows(room_id, _delete, written, enqueuing))[0]

    async def react(
        self,
        room_id: str,
        message_id: str,
        emoji: str,
        user_id: str,
        add: bool,
        written: Written | None = None,
    ) -> Message:
        def _react(db: Tx) -> list[Message]:
            current = _existing(db, room_id, message_id)
            if current.deleted and add:
                raise Conflict("the message was deleted")
            reactions = reactions_after(current.reactions, emoji, user_id, add)
            db.execute(
                "UPDATE messages SET reactions=? WHERE room_id=? AND id=?",
                (json.dumps({k: list(v) for k, v in reactions.items()}), room_id, message_id),
            )
            return [_existing(db, room_id, message_id)]

        return (await self._write_rows(room_id, _react, written))[0]

    async def list_messages(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[Message]:
        where: list[str] = ["room_id=?"]
        params: list[Any] = [room_id]
        if thread is not None:
            where.append("thread=?")
            params.append(thread)
        if after_seq is not None:
            where.append("seq>?")
            params.append(after_seq)
            order = "ASC"
        else:
            if before_seq is not None:
                where.append("seq<?")
                params.append(before_seq)
            order = "DESC"
        rows = await self._read(
            f"SELECT {COLUMNS} FROM messages WHERE {' AND '.join(where)}"
            f" ORDER BY seq {order} LIMIT ?",
            (*params, limit),
        )
        found = [message_record(row) for row in rows]
        return found if order == "ASC" else found[::-1]

    async def last_seq(self, room_id: str) -> int:
        rows = await self._read(
            "SELECT coalesce(max(seq), 0) FROM messages WHERE room_id=?", (room_id,)
        )
        return int(rows[0][0])

    async def archive_messages(
        self, room_id: str, through_seq: int, since_seq: int = 0, *, keep: int | None = None
    ) -> None:
        def _archive(db: Tx) -> None:
            through = through_seq
            if keep is not None:  # under the room's lock: no post moves the last seq meanwhile
                (last,) = db.execute(
                    "SELECT coalesce(max(seq), 0) FROM messages WHERE room_id=?", (room_id,)
                ).fetchone()
                through = max(through, int(last) - keep)
            # By ``messages_live`` (the room's unarchived rows): a load (``since_seq`` 0) reads
            # the window's rows, not the room's history.
            db.execute(
                "UPDATE messages SET archived=TRUE WHERE room_id=? AND seq>? AND seq<=?"
                " AND NOT archived",
                (room_id, since_seq, through),
            )
            if keep is not None:
                db.execute(
                    "UPDATE messages SET archived=FALSE WHERE room_id=? AND seq>? AND archived",
                    (room_id, through),
                )

        await self._write(_archive, serial=_chat(room_id))
