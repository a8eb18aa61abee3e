"""The events a room's webhooks may ask for, and the JSON each delivers.

Every payload follows Standard Webhooks' shape: ``{"type", "timestamp", "data"}``; ``data``
names the room and carries what happened (a message as the chat API shows it, a member's id
and role, a doc's name).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

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


def payload(event: str, room_id: str, now: float, data: dict[str, Any]) -> str:
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds")
    body = {
        "type": event,
        "timestamp": stamp.replace("+00:00", "Z"),
        "data": {"room": room_id, **data},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
