"""collab.wire.awareness: awareness payloads (YJS-WIRE §1.8, §2)."""

from __future__ import annotations

import json
from typing import Any

import pycrdt
import pytest

from collab.wire import AwarenessEntry, Limits, MalformedInput, encode_awareness, scan_awareness
from tests.support.ybytes import s, vu

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
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
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


NOT_OBJECT = "awareness state is not an object or null"
COUNT = "awareness count exceeds input"

# (input, test id, why it is refused): the exact MalformedInput.reason. Entries shorter than
# 5 bytes (client, clock, length, "{}") are refused by the count check before anything else.
REJECTED: list[tuple[bytes, str, str]] = [
    (payload((1, 1, "[1,2]")), "list", NOT_OBJECT),
    (payload((1, 1, "12")), "number", NOT_OBJECT),
    (payload((1, 1, "3")), "4-byte entry", COUNT),
    (payload((1, 1, '"s"')), "string", NOT_OBJECT),
    (payload((300, 300, "")), "empty string", "invalid JSON in awareness state"),
    (payload((1, 1, "")), "empty string in a 3-byte entry", COUNT),
    (payload((1, 1, '{"a":"' + "x" * (16 * 1024) + '"}')), "too big", "awareness state too large"),
    (payload((1, 1, '{"a":' * 17 + "1" + "}" * 17)), "too deep", "awareness state nested too deep"),
    (payload((1, 1, "[" * 100_000)), "very deep, never parsed", "awareness state too large"),
    (payload((1, 1, '{"a":NaN}')), "NaN", "NaN/Infinity in JSON"),
    (payload((1, 1, '{"a":-Infinity}')), "Infinity", "NaN/Infinity in JSON"),
    (payload((1, 1, '{"__proto__":{"admin":true}}')), "__proto__", '"__proto__" key'),
    (payload((1, 1, '{"a":"\\udc00"}')), "lone surrogate", "lone surrogate in awareness state"),
    (payload((1, 1, b'{"a":"\xff"}')), "invalid UTF-8", "invalid UTF-8 in awareness state"),
    (payload((1, 1, "{}")) + b"\x00", "trailing bytes", "trailing bytes after awareness entries"),
    (b"\x01\x01\x01\x05{}", "truncated", "truncated awareness state"),
    (payload((1, 1, "{}"))[:-1], "truncated to 4 bytes", COUNT),
    (
        payload(*[(i, 1, "{}") for i in range(9)]),
        "more than 8 entries",
        "too many awareness entries",
    ),
    (payload((1, 1, "{}"), (1, 2, "{}")), "duplicate client", "duplicate awareness client"),
    (b"\x01" + vu(2**53) + b"\x01\x02{}", "client above 2**53-1", "varint above 2**53-1"),
    (b"\xff\xff\xff\xff\x0f\x01\x01\x02{}", "count exceeds input", COUNT),
    (b"", "empty", "truncated varint"),
]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(data, reason) for data, _, reason in REJECTED],
    ids=[r[1] for r in REJECTED],
)
def test_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        scan_awareness(data, L)
    assert exc.value.reason == reason


def test_a_repeated_state_is_judged_by_the_limits_of_each_scan() -> None:
    """States seen before are not parsed again, but a cap still applies to every scan: the
    depth (part of what was cached), the size of the canonical form, and garbage stays
    garbage however often it is sent."""
    from collab.wire import awareness

    deep = '{"a":' * 5 + "1" + "}" * 5
    assert scan_awareness(payload((1, 1, deep)), L)[0].state == deep.encode()
    assert scan_awareness(payload((1, 2, deep)), L)[0].state == deep.encode()  # cached
    with pytest.raises(MalformedInput, match="deep"):
        scan_awareness(payload((1, 3, deep)), Limits(max_awareness_depth=3))
    small = Limits(max_awareness_state_bytes=len(deep) - 1)
    with pytest.raises(MalformedInput, match="too large"):
        scan_awareness(payload((1, 4, deep)), small)
    for _ in range(2):
        with pytest.raises(MalformedInput):
            scan_awareness(payload((1, 5, '{"a": 1,}')), L)
        with pytest.raises(MalformedInput, match="not an object"):
            scan_awareness(payload((1, 5, "[1]")), L)
    assert scan_awareness(payload((1, 6, " null ")), L)[0].state is None
    assert scan_awareness(payload((1, 7, " null ")), L)[0].state is None  # cached removal
    # Bounded: past its size the cache starts over; long states are never kept.
    for i in range(awareness._CACHED + 10):
        scan_awareness(payload((1, 1, f'{{"n":{i}}}')), L)
    assert len(awareness._seen) <= awareness._CACHED
    long = '{"a":"' + "x" * awareness._CACHEABLE + '"}'
    scan_awareness(payload((1, 1, long)), L)
    assert all(len(raw) <= awareness._CACHEABLE for raw, _ in awareness._seen)
