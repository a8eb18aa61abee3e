"""collab.wire.awareness: awareness payloads (YJS-WIRE §1.8, §2)."""

from __future__ import annotations

import json

import pycrdt
import pytest

from collab.wire import AwarenessEntry, Limits, MalformedInput, encode_awareness, scan_awareness
from tests._wire import s, vu

L = Limits()


def payload(*entries: tuple[int, int, str | bytes]) -> bytes:
    out = vu(len(entries))
    for client, clock, state in entries:
        out += vu(client) + vu(clock) + s(state)
    return out


def test_wire_examples() -> None:
    # §1.2: frame 01 0b | 01 01 01 07 {"u":1};  §1.8: client 1, clock 2, null
    assert scan_awareness(bytes.fromhex("010101077b2275223a317d"), L) == [
        AwarenessEntry(1, 1, b'{"u":1}')
    ]
    assert scan_awareness(bytes.fromhex("010102046e756c6c"), L) == [AwarenessEntry(1, 2, None)]


def test_pycrdt_payload_round_trip() -> None:
    doc = pycrdt.Doc()
    aw = pycrdt.Awareness(doc)
    aw.set_local_state({"user": {"name": "Zoë 😀", "color": "#f00"}, "cursor": None})
    raw = aw.encode_awareness_update([doc.client_id])
    entries = scan_awareness(raw, L)
    assert len(entries) == 1 and entries[0].client == doc.client_id
    assert entries[0].state is not None
    assert json.loads(entries[0].state) == aw.get_local_state()
    again = encode_awareness(entries)
    assert scan_awareness(again, L) == entries
    peer = pycrdt.Awareness(pycrdt.Doc())
    peer.apply_awareness_update(again, "test")
    assert peer.states[doc.client_id] == aw.get_local_state()


def test_canonical_reencoding() -> None:
    entries = scan_awareness(payload((5, 3, '{ "a" : [1, 2] ,\n "b": "é" }'), (6, 1, "null")), L)
    assert entries[0].state == '{"a":[1,2],"b":"é"}'.encode()
    assert entries[1].state is None
    assert encode_awareness(entries) == payload((5, 3, '{"a":[1,2],"b":"é"}'), (6, 1, "null"))
    assert encode_awareness([]) == b"\x00"


def test_limits_at_the_edge_accepted() -> None:
    deep = '{"a":' * 16 + "1" + "}" * 16
    scan_awareness(payload((1, 1, deep)), L)
    scan_awareness(payload(*[(i, 1, "{}") for i in range(8)]), L)
    big = '{"a":"' + "x" * (16 * 1024 - 8) + '"}'
    assert len(big) == 16 * 1024
    scan_awareness(payload((1, 1, big)), L)
    scan_awareness(payload((2**53 - 1, 2**53 - 1, "{}")), L)


REJECTED: list[tuple[bytes, str]] = [
    (payload((1, 1, "[1,2]")), "list"),
    (payload((1, 1, "3")), "number"),
    (payload((1, 1, '"s"')), "string"),
    (payload((1, 1, "")), "empty string"),
    (payload((1, 1, '{"a":"' + "x" * (16 * 1024) + '"}')), "too big"),
    (payload((1, 1, '{"a":' * 17 + "1" + "}" * 17)), "too deep"),
    (payload((1, 1, "[" * 100_000)), "very deep, never parsed"),
    (payload((1, 1, '{"a":NaN}')), "NaN"),
    (payload((1, 1, '{"a":-Infinity}')), "Infinity"),
    (payload((1, 1, '{"__proto__":{"admin":true}}')), "__proto__"),
    (payload((1, 1, '{"a":"\\udc00"}')), "lone surrogate"),
    (payload((1, 1, b'{"a":"\xff"}')), "invalid UTF-8"),
    (payload((1, 1, "{}")) + b"\x00", "trailing bytes"),
    (payload((1, 1, "{}"))[:-1], "truncated"),
    (payload(*[(i, 1, "{}") for i in range(9)]), "more than 8 entries"),
    (payload((1, 1, "{}"), (1, 2, "{}")), "duplicate client"),
    (b"\x01" + vu(2**53) + b"\x01\x02{}", "client above 2**53-1"),
    (b"\xff\xff\xff\xff\x0f\x01\x01\x02{}", "count exceeds input"),
    (b"", "empty"),
]


@pytest.mark.parametrize(("data", "why"), REJECTED, ids=[w for _, w in REJECTED])
def test_rejected(data: bytes, why: str) -> None:
    with pytest.raises(MalformedInput):
        scan_awareness(data, L)
