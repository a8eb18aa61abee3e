"""collab's Python client: a program (a bot, a notebook, an agent) in a room, in a few lines.

    client.py       Client / connect: the credential, the API, the task group
    room.py         Room: docs, chat writes, ``messages()`` (each new message once)
    sync.py         SyncedDoc: a pycrdt Doc kept in sync over the socket, reconnecting
    presence.py     Presence: one's awareness state, and everyone else's
    chat.py         Message, and the chat routes
    http.py         Api: /api/v1 over httpx2, typed errors, retries
    credentials.py  a fixed token or a refreshing callback
    backoff.py      exponential backoff with jitter
    errors.py       the client's error tree (by HTTP status and close code)
    link.py frames.py   shared plumbing: URLs, limits; the few frames read by hand

A client library: it imports nothing of the server (tests/test_layers.py checks that).
docs/client.md is the guide.
"""

from __future__ import annotations

from collab.client.backoff import Backoff
from collab.client.chat import Author, Message
from collab.client.client import Client, connect
from collab.client.errors import (
    ApiError,
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from collab.client.presence import Presence
from collab.client.room import Room
from collab.client.sync import SyncedDoc

__all__ = [
    "ApiError",
    "Author",
    "Backoff",
    "BadRequest",
    "Client",
    "ClientError",
    "Conflict",
    "Forbidden",
    "Message",
    "NotFound",
    "Presence",
    "RateLimited",
    "Room",
    "SyncedDoc",
    "TooLarge",
    "Unauthorized",
    "connect",
]
