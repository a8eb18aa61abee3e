"""The ``chat`` doc's schema (docs/chat.md), and the server's writes into it.

Roots: ``messages`` (Y.Map: message id -> the message, one plain JSON value), ``reads`` (Y.Map:
user id -> the seq of their public read marker) and ``info`` (Y.Map: ``last_seq``,
``archived_through``). Display order is ``seq``, never the map's. A message holds only the keys
whose value is not the default (``DEFAULTS``: a plain message is five keys, not thirteen). It is
one item, not a Y.Map of one item per key: the server alone writes the doc, so nothing needs
to merge a message's keys, and each item is something every reader decodes, integrates and
keeps (a Y.Map of five keys cost a Yjs reader 1.7 times the CPU per post and 2.7 times the
garbage collection; bench/profiles/CHAT-LATENCY.md, "Stop 21"). A change of a message sets
its whole value again; a message the live window lets go is deleted from ``messages`` (a Yjs
deletion, which compaction then drops from the stored doc). A doc written before holds Y.Maps
with the same keys: they are read alike and made plain when the message is next written
(every shown message is, when the doc is loaded).
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from collab.meta import Message

MESSAGES = "messages"
READS = "reads"
INFO = "info"


def fields(message: Message) -> dict[str, Any]:
    """The message as the doc holds it (plain JSON values)."""
    return {
        "id": message.id,
        "seq": message.seq,
        "author": {
            "id": message.author,
            "name": message.author_name,
            "handle": message.author_handle,
        },
        "created_at": message.created_at,
        "edited_at": message.edited_at,
        "text": message.text,
        "deleted": message.deleted,
        "thread": message.thread,
        "reply_count": message.reply_count,
        "last_reply_at": message.last_reply_at,
        "reactions": {emoji: list(users) for emoji, users in message.reactions.items()},
        "mentions": list(message.mentions),
        "attachments": list(message.attachments),
    }


# A message's keys that the doc leaves out while they hold these values (docs/chat.md): a reader
# takes a missing key for its default. A doc written before may hold them with these values.
DEFAULTS: dict[str, Any] = {
    "edited_at": None,
    "deleted": False,
    "thread": None,
    "reply_count": 0,
    "last_reply_at": None,
    "reactions": {},
    "mentions": [],
    "attachments": [],
}


def doc_fields(message: Message) -> dict[str, Any]:
    """The message as the doc holds it: ``fields`` without the keys at their default."""
    return {
        key: value
        for key, value in fields(message).items()
        if key not in DEFAULTS or not _same(DEFAULTS[key], value)
    }


def messages_map(doc: Doc[Any]) -> Map[Any]:
    found: Map[Any] = doc.get(MESSAGES, type=Map)
    return found


def put_message(doc: Doc[Any], message: Message) -> dict[str, Any]:
    """Show the message (call inside a transaction): its entry becomes ``doc_fields``, one
    plain JSON value, set only when it differs from what the doc holds. Returns that value."""
    messages = messages_map(doc)
    wanted = doc_fields(message)
    if not shows(messages.get(message.id), wanted):
        messages[message.id] = wanted
    return wanted


def entry_value(entry: Any, key: str) -> Any:
    """A key of a message entry, plain (this schema) or a Y.Map (docs written before)."""
    if isinstance(entry, Map | dict):
        return entry.get(key, DEFAULTS.get(key))
    return None


def shows(held: Any, wanted: dict[str, Any]) -> bool:
    """Whether a doc's entry is the plain value ``wanted`` (``doc_fields``)."""
    if not isinstance(held, dict) or held.keys() != wanted.keys():
        return False
    return all(_same(held[key], value) for key, value in wanted.items())


def _same(held: Any, wanted: Any) -> bool:
    # Numbers come back as floats (JavaScript numbers): 3 and 3.0 are the same value.
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        return isinstance(held, int | float) and not isinstance(held, bool) and held == wanted
    return bool(held == wanted)


def drop_messages(doc: Doc[Any], ids: list[str]) -> None:
    messages = messages_map(doc)
    for message_id in ids:
        if message_id in messages:
            del messages[message_id]


def set_info(doc: Doc[Any], last_seq: int, archived_through: int) -> None:
    info = doc.get(INFO, type=Map)
    for key, value in (("last_seq", last_seq), ("archived_through", archived_through)):
        if not _same(info.get(key), value):
            info[key] = value


def info_value(doc: Doc[Any], key: str) -> int:
    value = doc.get(INFO, type=Map).get(key)
    return int(value) if isinstance(value, int | float) else 0


def set_read(doc: Doc[Any], user_id: str, seq: int) -> None:
    reads = doc.get(READS, type=Map)
    if not _same(reads.get(user_id), seq):
        reads[user_id] = seq


def drop_read(doc: Doc[Any], user_id: str) -> None:
    reads = doc.get(READS, type=Map)
    if user_id in reads:
        del reads[user_id]


def read_users(doc: Doc[Any]) -> set[str]:
    """The users with a marker in the doc's ``reads``."""
    return set(doc.get(READS, type=Map).keys())


def live_seqs(doc: Doc[Any]) -> dict[str, int]:
    """Every message id in the doc with its seq."""
    found: dict[str, int] = {}
    for message_id, entry in messages_map(doc).items():
        seq = entry_value(entry, "seq")
        found[message_id] = int(seq) if isinstance(seq, int | float) else 0
    return found
