"""The chat doc's message maps hold only the keys off their default (docs/chat.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pycrdt import Doc, Map

from collab.chat.schema import DEFAULTS, doc_fields, fields, messages_map, put_message
from collab.meta import Message

PLAIN = Message(
    room_id="r",
    seq=1,
    id="m1",
    author="u1",
    author_name="Ann",
    author_handle="ann",
    client_id="c1",
    text="hello",
    created_at=1.5,
)


def held(doc: Doc[Any], message_id: str = "m1") -> dict[str, Any]:
    entry = messages_map(doc).get(message_id)
    assert isinstance(entry, Map)
    return dict(entry.to_py() or {})


def write(doc: Doc[Any], message: Message) -> bytes:
    """``put_message`` in a transaction; the update it made (b"" for none)."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    with doc.transaction():
        put_message(doc, message)
    doc.unobserve(sub)
    return b"".join(updates)


def test_a_plain_message_is_its_five_keys() -> None:
    assert doc_fields(PLAIN) == {
        "id": "m1",
        "seq": 1,
        "author": {"id": "u1", "name": "Ann", "handle": "ann"},
        "created_at": 1.5,
        "text": "hello",
    }
    doc: Doc[Any] = Doc()
    write(doc, PLAIN)
    assert held(doc) == doc_fields(PLAIN)
    # read with the defaults, it is the whole message
    assert {**DEFAULTS, **held(doc)} == fields(PLAIN)


def test_a_key_set_off_its_default_and_back_is_removed() -> None:
    doc: Doc[Any] = Doc()
    write(doc, PLAIN)
    reacted = dataclasses.replace(PLAIN, reactions={"👍": ("u2",)}, edited_at=2.0)
    write(doc, reacted)
    assert held(doc)["reactions"] == {"👍": ["u2"]} and held(doc)["edited_at"] == 2.0
    write(doc, dataclasses.replace(reacted, reactions={}))
    assert "reactions" not in held(doc) and held(doc)["edited_at"] == 2.0
    deleted = dataclasses.replace(reacted, reactions={}, deleted=True, text="", edited_at=3.0)
    write(doc, deleted)
    assert held(doc) == {**doc_fields(PLAIN), "text": "", "deleted": True, "edited_at": 3.0}


def test_an_older_docs_keys_at_their_default_are_left_alone() -> None:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        messages_map(doc)["m1"] = Map(fields(PLAIN))  # every key, as docs were written before
    assert write(doc, PLAIN) == b""  # nothing changed: no update at all
    assert held(doc) == fields(PLAIN)
    write(doc, dataclasses.replace(PLAIN, text="edited", edited_at=2.0))
    assert held(doc) == {**fields(PLAIN), "text": "edited", "edited_at": 2.0}
