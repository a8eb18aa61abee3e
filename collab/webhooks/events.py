"""The events a room's webhooks may ask for, and the JSON each delivers.

Every payload follows Standard Webhooks' shape: ``{"type", "timestamp", "data"}``; ``data``
names the room and carries what happened (a message as the chat API shows it, a member's id
and role, a doc's name). A chat write's events (``chat_events``: the write's own and, for a
new or edited message that mentions someone, a ``mention``) are pure functions of the message,
so the message's own transaction can enqueue them (``chat_payloads``, for a
``collab.meta.WebhookOutbox``).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict
from typing import Any

from collab.meta import Message

MESSAGE_POSTED = "message.posted"
MESSAGE_EDITED = "message.edited"
MESSAGE_DELETED = "message.deleted"
MENTION = "mention"
MEMBER_ADDED = "member.added"
MEMBER_REMOVED = "member.removed"
DOC_CHANGED = "doc.changed"
EVENTS = (
    MESSAGE_POSTED,
    MESSAGE_EDITED,
    MESSAGE_DELETED,
    MENTION,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    DOC_CHANGED,
)
ALL = "*"

# Audit actions that are membership changes (collab.api.access.audit reports them here).
MEMBER_ACTIONS = {
    "member.add": MEMBER_ADDED,
    "invite.accept": MEMBER_ADDED,
    "bot.create": MEMBER_ADDED,
    "hook.create": MEMBER_ADDED,
    "member.remove": MEMBER_REMOVED,
    "bot.delete": MEMBER_REMOVED,
}
MESSAGE_FIELDS = ("id", "seq", "text", "thread", "created_at", "edited_at", "deleted", "mentions")


def payload(event: str, room_id: str, now: float, data: dict[str, Any]) -> str:
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds")
    body = {
        "type": event,
        "timestamp": stamp.replace("+00:00", "Z"),
        "data": {"room": room_id, **data},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def message_data(message: Message) -> dict[str, Any]:
    found = {k: v for k, v in asdict(message).items() if k in MESSAGE_FIELDS}
    author = {"id": message.author, "name": message.author_name, "handle": message.author_handle}
    return {"message": {**found, "author": author}}


def chat_events(event: str, message: Message) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of each event a chat write of ``message`` reports: ``event``
    (``message.posted``, ``.edited`` or ``.deleted``), then a ``mention`` naming who is
    ``mentioned`` when a new or edited message mentions someone."""
    found = [(event, message_data(message))]
    if event in (MESSAGE_POSTED, MESSAGE_EDITED) and message.mentions:
        found.append((MENTION, {**message_data(message), "mentioned": list(message.mentions)}))
    return found


def chat_payloads(event: str, message: Message, now: float) -> list[tuple[str, str]]:
    """(event, payload) of ``chat_events``, stamped ``now``: a ``WebhookOutbox``'s ``events``."""
    return [
        (kind, payload(kind, message.room_id, now, data))
        for kind, data in chat_events(event, message)
    ]
