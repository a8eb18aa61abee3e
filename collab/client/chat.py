"""Chat messages as the client sees them (``docs/chat.md``), and the calls that write them.

Writes go through the HTTP API. A post carries a ``client_id`` (a fresh one unless the caller
gives theirs), so it is retried through a restart without ever posting twice: give a stable
one (``f"answer-{message.id}"``) and even a bot restarted mid-answer posts once.
"""

from __future__ import annotations

import math
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from collab.client.http import Api

# A write retried this long through restarts and 429s before it raises.
WRITE_RETRY = 120.0


@dataclass(frozen=True)
class Author:
    id: str
    name: str
    handle: str | None


@dataclass(frozen=True)
class Message:
    id: str
    seq: int
    room: str
    author: Author
    text: str
    created_at: float
    edited_at: float | None = None
    deleted: bool = False
    thread: str | None = None
    reply_count: int = 0
    reactions: dict[str, list[str]] = field(default_factory=dict)
    mentions: list[str] = field(default_factory=list)
    client_id: str | None = None  # only on one's own messages

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        author = data.get("author") or {}
        return cls(
            id=str(data["id"]),
            seq=int(data["seq"]),
            room=str(data.get("room", "")),
            author=Author(
                str(author.get("id", "")), str(author.get("name", "")), author.get("handle")
            ),
            text=str(data.get("text", "")),
            created_at=float(data.get("created_at", 0.0)),
            edited_at=data.get("edited_at"),
            deleted=bool(data.get("deleted", False)),
            thread=data.get("thread"),
            reply_count=int(data.get("reply_count", 0)),
            reactions={k: list(v) for k, v in (data.get("reactions") or {}).items()},
            mentions=list(data.get("mentions") or []),
            client_id=data.get("client_id"),
        )


class ChatCalls:
    """The chat routes of one room."""

    def __init__(self, api: Api, room: str) -> None:
        self.api = api
        self.room = room
        self.base = f"/rooms/{urllib.parse.quote(room, safe='')}/messages"

    async def post(
        self, text: str, *, thread: str | None = None, client_id: str | None = None
    ) -> Message:
        body: dict[str, Any] = {"text": text, "client_id": client_id or uuid.uuid4().hex}
        if thread is not None:
            body["thread"] = thread
        return Message.from_json(
            await self.api.call("POST", self.base, json=body, retry=WRITE_RETRY)
        )

    async def edit(self, message_id: str, text: str) -> Message:
        found = await self.api.call(
            "PATCH", self._one(message_id), json={"text": text}, retry=WRITE_RETRY
        )
        return Message.from_json(found)

    async def delete(self, message_id: str) -> None:
        await self.api.call("DELETE", self._one(message_id), retry=WRITE_RETRY)

    async def react(self, message_id: str, emoji: str, add: bool = True) -> Message:
        path = self._one(message_id) + "/reactions/" + urllib.parse.quote(emoji, safe="")
        found = await self.api.call("PUT" if add else "DELETE", path, retry=WRITE_RETRY)
        return Message.from_json(found)

    async def get(self, message_id: str) -> Message:
        return Message.from_json(
            await self.api.call("GET", self._one(message_id), retry=WRITE_RETRY)
        )

    async def after(self, seq: int, limit: int = 200, *, retry: float = math.inf) -> list[Message]:
        """Messages after ``seq``, oldest first (at most ``limit``)."""
        params = {"after_seq": seq, "limit": limit}
        page = await self.api.call("GET", self.base, params=params, retry=retry)
        return [Message.from_json(item) for item in page["items"]]

    async def latest(self, limit: int = 50, *, thread: str | None = None) -> list[Message]:
        """The newest ``limit`` messages (or replies of ``thread``), oldest first."""
        params: dict[str, Any] = {"limit": limit}
        if thread is not None:
            params["thread"] = thread
        page = await self.api.call("GET", self.base, params=params, retry=WRITE_RETRY)
        return [Message.from_json(item) for item in page["items"]]

    async def last_seq(self) -> int:
        newest = await self.latest(1)
        return newest[-1].seq if newest else 0

    def _one(self, message_id: str) -> str:
        return f"{self.base}/{urllib.parse.quote(message_id, safe='')}"
