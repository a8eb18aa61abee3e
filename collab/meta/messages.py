"""Chat messages: every message of every room, live or archived, one row each.

The row is the message's record of truth; the room's ``chat`` Yjs doc shows the latest ones
(``collab.chat``). ``seq`` is per room, gapless, from 1, given in the posting transaction, and
is the display order. A post is idempotent by (room, author, client id) for as long as the row
exists, and rows are never deleted while their room exists: a deleted message is a tombstone
(text, reactions and mentions emptied). A reply names its parent in ``thread`` (one level deep);
posting it bumps the parent's ``reply_count`` in the same step. A tombstone keeps its replies
but takes no new one (as it takes no edit and no reaction).

Every write takes an optional ``Written``: it is told the rows the write changed while the
write's transaction is still open, in the order of the writes, so that the caller can show them
in the ``chat`` doc and have both committed together (``collab.db.Database``, group commit);
it is told when that transaction then fails.

A post (a new message, not a client id's retry), an edit and a deletion also take an optional
``WebhookOutbox``: the outgoing webhooks' deliveries of the write, inserted by the transaction
function that writes the row (the transactional outbox pattern), so the message and its
deliveries are committed together or not at all (``collab.meta.webhooks``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from collab.errors import LimitReached, Quota
from collab.meta.webhooks import Delivery


@dataclass(frozen=True)
class NewMessage:
    """A post as the server stamps it, before it has a seq."""

    room_id: str
    id: str
    author: str
    author_name: str
    author_handle: str | None
    client_id: str
    text: str
    created_at: float
    thread: str | None = None
    mentions: tuple[str, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()  # FileRecord.attachment() of the room's files


@dataclass(frozen=True)
class Message:
    room_id: str
    seq: int
    id: str
    author: str
    author_name: str
    author_handle: str | None
    client_id: str
    text: str
    created_at: float
    thread: str | None = None
    edited_at: float | None = None
    deleted: bool = False
    # emoji -> user ids in reaction order; never mutated (every change makes a new record)
    reactions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()
    attachments: tuple[Any, ...] = ()
    reply_count: int = 0
    last_reply_at: float | None = None
    archived: bool = False


DELETED_PARENT = "the thread's first message was deleted"
# Distinct emoji one message holds: each is a key of the message in the live chat doc, which
# every reader decodes and keeps, so a flood of distinct emoji must not grow it without bound.
MAX_REACTIONS = 20


class ThreadProblem(Exception):
    """A reply's parent is missing from the room (``missing``), or is itself a reply."""

    def __init__(self, missing: bool) -> None:
        super().__init__("no such message" if missing else "replies are one level deep")
        self.missing = missing


class Written(Protocol):
    """What a message write tells its caller before it commits (see the module docstring)."""

    def rows(self, rows: list[Message]) -> None:
        """The rows the write changed, as its transaction holds them (a reply: the parent
        first, then the reply); called on the event loop, in the order of the writes, before
        the write returns, and only when it succeeded. Must not raise or wait."""

    def rolled_back(self) -> None:
        """The transaction that held the rows failed after ``rows``: they were never stored."""


def _nothing(made: list[Delivery]) -> None:
    pass


@dataclass(frozen=True)
class WebhookOutbox:
    """The webhook events a message write enqueues in its own transaction.

    ``events(message, now)`` gives the (event, payload) pairs of the message as the
    transaction holds it; each is enqueued as ``Webhooks.enqueue_webhook_event`` does (one
    pending delivery per live endpoint of the room whose events include it, or ``*``), due
    ``now``: ``clock()`` read inside the transaction, each delivery named by ``new_id()``. These
    three are called only when the room has a live endpoint, maybe on the database's thread,
    and must touch nothing else (a transaction may run more than once; the store never looks
    inside a payload: its format is the webhooks' own). ``enqueued(deliveries)`` is called on
    the event loop once the write has made them durable and returned (nothing made: not
    called): the worker's wake-up. None of them may wait; only ``events`` may raise, which
    fails the whole write (nothing of it is stored).
    """

    events: Callable[[Message, float], Sequence[tuple[str, str]]]
    clock: Callable[[], float]
    new_id: Callable[[], str]
    enqueued: Callable[[list[Delivery]], None] = _nothing


class Messages(Protocol):
    async def post_message(
        self, new: NewMessage, written: Written | None = None, outbox: WebhookOutbox | None = None
    ) -> tuple[Message, bool]:
        """Store ``new`` with the room's next seq: (the message, True), and ``outbox``'s
        deliveries of it. If the author already posted this client id in the room: (that
        message, False), nothing written, nothing enqueued.
        Raises ThreadProblem when ``new.thread`` names no top-level message of the room, and
        errors.Conflict when it names a deleted one (a tombstone takes no new reply)."""

    async def get_message(self, room_id: str, message_id: str) -> Message | None: ...

    async def posted_message(self, room_id: str, author: str, client_id: str) -> Message | None:
        """The message ``author`` posted in ``room_id`` under ``client_id``, if any."""
        ...

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
        """New text (and ``edited_at``, and ``mentions`` when given: what the new text
        mentions), and ``outbox``'s deliveries of the edited message; errors.NotFound if
        missing, Conflict if deleted."""

    async def delete_message(
        self,
        room_id: str,
        message_id: str,
        at: float,
        written: Written | None = None,
        outbox: WebhookOutbox | None = None,
    ) -> Message:
        """Make the message a tombstone (idempotent), deleting its inbox entries
        (``collab.meta.inbox``) and enqueueing ``outbox``'s deliveries of the tombstone in the
        same step (only when it was not one already); errors.NotFound if missing."""

    async def react(
        self,
        room_id: str,
        message_id: str,
        emoji: str,
        user_id: str,
        add: bool,
        written: Written | None = None,
    ) -> Message:
        """Add or remove one user's reaction (idempotent either way); NotFound if missing,
        Conflict when adding to a deleted message, LimitReached when adding an emoji new to a
        message that has ``MAX_REACTIONS`` (decided in the write's own step)."""

    async def list_messages(
        self,
        room_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[Message]:
        """Messages in seq order: the newest ``limit`` before ``before_seq``, or the oldest
        ``limit`` after ``after_seq`` (``thread``: only that parent's replies)."""

    async def last_seq(self, room_id: str) -> int:
        """The room's highest seq (0: no message yet)."""

    async def archive_messages(
        self, room_id: str, through_seq: int, since_seq: int = 0, *, keep: int | None = None
    ) -> None:
        """Mark the messages with ``since_seq`` < seq <= ``through_seq`` as out of the live
        doc (the window moved). With ``keep`` (a doc's load, the window's size), also mark
        every later one as in it again (a larger window brings archived messages back into
        the doc), ``through_seq`` first raised to the room's last seq minus ``keep``, read in
        the same step: another node's window may have moved on since the caller looked, and a
        load must not bring back what it archived."""


def reactions_after(
    reactions: Mapping[str, Sequence[str]], emoji: str, user_id: str, add: bool
) -> dict[str, tuple[str, ...]]:
    """``reactions`` with one user's ``emoji`` added or removed (an emptied emoji goes);
    errors.LimitReached when adding an emoji new to a message that has ``MAX_REACTIONS``."""
    changed = {key: tuple(users) for key, users in reactions.items()}
    users = changed.get(emoji, ())
    if add and emoji not in changed and len(changed) >= MAX_REACTIONS:
        raise LimitReached(
            Quota.reactions_per_message,
            f"a message holds at most {MAX_REACTIONS} different reactions",
        )
    if add and user_id not in users:
        changed[emoji] = (*users, user_id)
    elif not add and user_id in users:
        remaining = tuple(u for u in users if u != user_id)
        if remaining:
            changed[emoji] = remaining
        else:
            del changed[emoji]
    return changed
