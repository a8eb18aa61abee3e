"""A message in the chat doc is one plain JSON value holding only the keys off their default
(docs/chat.md); a doc written before holds Y.Maps, read alike and made plain when written."""

from __future__ import annotations

import dataclasses
from typing import Any

from pycrdt import Doc, Map

from collab.chat.schema import (
    DEFAULTS,
    doc_fields,
    entry_value,
    fields,
    live_seqs,
    messages_map,
    put_message,
)
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
    assert isinstance(entry, dict)  # one item, not a map of items
    return entry


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


def test_an_unchanged_message_writes_nothing() -> None:
    doc: Doc[Any] = Doc()
    assert write(doc, PLAIN) != b""
    assert write(doc, dataclasses.replace(PLAIN, seq=1)) == b""
    assert write(doc, dataclasses.replace(PLAIN, text="edited")) != b""


def test_a_plain_message_is_one_item_every_reader_decodes() -> None:
    """Each key of a Y.Map is an item that every reader decodes, integrates and keeps: the
    plain entry makes a post's update smaller than the map the doc used to hold."""
    as_map: Doc[Any] = Doc()
    before = as_map.get_state()
    with as_map.transaction():
        messages_map(as_map)["m1"] = Map(doc_fields(PLAIN))
    plain: Doc[Any] = Doc()
    assert len(write(plain, PLAIN)) < len(as_map.get_update(before))


def test_an_older_docs_map_entry_is_read_and_made_plain_when_written() -> None:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        messages_map(doc)["m1"] = Map(fields(PLAIN))  # every key in a Y.Map, as docs once were
        messages_map(doc)["m2"] = Map({"id": "m2", "seq": 2})
    entry = messages_map(doc).get("m1")
    assert entry_value(entry, "seq") == 1 and entry_value(entry, "reactions") == {}
    assert live_seqs(doc) == {"m1": 1, "m2": 2}
    assert write(doc, PLAIN) != b""
    assert held(doc) == doc_fields(PLAIN)
    assert write(doc, PLAIN) == b""
    assert live_seqs(doc) == {"m1": 1, "m2": 2}


def test_an_entry_that_is_no_message_has_no_fields() -> None:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        messages_map(doc)["x"] = "not a message"
    assert entry_value(messages_map(doc).get("x"), "seq") is None
    assert live_seqs(doc) == {"x": 0}
