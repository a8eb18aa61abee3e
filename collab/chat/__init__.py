"""Chat: every room's server-authored ``chat`` doc and the operations that write it.

    schema.py    the doc's layout (docs/chat.md) and the server's writes into it
    window.py    LiveWindow: a loaded chat doc shows the latest rows of the messages table
    service.py   ChatService: post, edit, delete, react, history (API and socket alike)
    requests.py  SocketChat: the chat socket's requests (type 101) carried out by ChatService
    readnodes.py ReadsFollower: with other nodes, a user's private read markers reach their docs

The ``messages`` table (``collab.meta.messages``) is the record of truth; the doc is its
projection, which any Yjs client can render read-only.
"""

from __future__ import annotations

from collab.chat.requests import SocketChat
from collab.chat.service import Actor, ChatService, RowObserver, check_client_id, check_emoji
from collab.chat.window import CHAT, LiveWindow, chat_key

__all__ = [
    "CHAT",
    "Actor",
    "ChatService",
    "LiveWindow",
    "RowObserver",
    "SocketChat",
    "chat_key",
    "check_client_id",
    "check_emoji",
]
