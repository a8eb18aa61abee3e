"""Stream entries: what collab writes decodes back; anything else is a BadEntry, never a crash."""

from __future__ import annotations

import pytest

from collab.fanout import GONE, Entry
from collab.fanout.entries import BadEntry, decode_entry, encode_entry, node_name, stream_key
from collab.names import DocKey

GEN = "0123456789abcdef0123456789abcdef"


def test_an_entry_round_trips() -> None:
    entry = Entry(42, GEN, b"\x01\x02", node="host:12:abcd", sent_at=1700000000.25)
    assert decode_entry(encode_entry(entry), max_update=10) == entry
    control = Entry(0, GEN, kind=GONE, node="n", sent_at=1.0)
    assert decode_entry(encode_entry(control), max_update=10) == control
    uncarried = Entry(7, GEN, None, node="n", sent_at=2.0)
    assert decode_entry(encode_entry(uncarried), max_update=10).update is None


def test_the_key_is_hash_tagged_by_room() -> None:
    assert stream_key("collab", DocKey("team.1", "notes")) == "collab:{team.1}:notes"


@pytest.mark.parametrize(
    "change",
    [
        {b"seq": b"-1"},
        {b"seq": b"0"},  # an update's seq starts at 1
        {b"seq": b"99999999999999999999"},
        {b"seq": b"12a"},
        {b"gen": b""},
        {b"gen": b"x" * 65},
        {b"gen": b"a b"},
        {b"node": b"{evil}"},
        {b"kind": b"drop-table"},
        {b"at": b"nan"},
        {b"at": b"1e309"},
        {b"update": b""},
        {b"update": b"x" * 11},  # past max_update
        {b"extra": b"1"},
        {b"seq": None},  # missing
    ],
)
def test_anything_else_is_a_bad_entry(change: dict[bytes, bytes | None]) -> None:
    fields: dict[bytes, bytes] = encode_entry(Entry(1, GEN, b"u", node="n", sent_at=1.0))
    for name, value in change.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    with pytest.raises(BadEntry):
        decode_entry(fields, max_update=10)


def test_odd_replies_are_bad_entries() -> None:
    replies: list[object] = [None, [], b"x", {b"seq": 1}, {"seq": b"1"}]
    for reply in replies:
        with pytest.raises(BadEntry):
            decode_entry(reply, max_update=10)
    control = encode_entry(Entry(0, GEN, kind=GONE, node="n", sent_at=1.0))
    control[b"update"] = b"u"  # a control entry never carries an update
    with pytest.raises(BadEntry):
        decode_entry(control, max_update=10)


def test_node_names() -> None:
    assert node_name("web-1:123:abcd") == "web-1:123:abcd"
    for bad in ("", "a b", "x" * 65, "{x}"):
        with pytest.raises(ValueError):
            node_name(bad)
