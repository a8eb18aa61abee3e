"""collab.wire.framing: y-websocket frames in and out (YJS-WIRE §1.2).

Every refusal is a ``ProtocolViolation`` (close code 1002) whose reason says which rule broke;
the payloads themselves are not read here (that is ``collab.wire.update`` / ``awareness``).
"""

from __future__ import annotations

import pytest

from collab.errors import ProtocolViolation
from collab.wire import framing
from tests.support.ybytes import vu

# --- what is accepted, and the encoders' round trip -----------------------------------------


def test_encoders_round_trip() -> None:
    update = bytes.fromhex("0101010004010174016100")
    assert framing.decode_message(framing.sync_step1(b"\x00")) == framing.SyncStep1(b"\x00")
    assert framing.decode_message(framing.sync_step2(update)) == framing.SyncStep2(update)
    assert framing.decode_message(framing.sync_update(update)) == framing.SyncUpdate(update)
    assert framing.decode_message(framing.awareness(b"\x00")) == framing.Awareness(b"\x00")
    assert framing.decode_message(framing.saved(7)) == framing.SavedRequest(7)
    assert framing.decode_message(framing.saved(2**40)) == framing.SavedRequest(2**40)
    assert framing.decode_message(b"\x03") == framing.QueryAwareness()
    body = b'{"op":"post"}'
    assert framing.decode_message(framing.chat_request(body)) == framing.ChatRequest(body)


def test_encoded_bytes() -> None:
    # §1.2 examples: sync step 1 with an empty state vector; a 200-byte payload's 2-byte length
    assert framing.sync_step1(b"\x00") == b"\x00\x00\x01\x00"
    assert framing.sync_update(b"u" * 200) == b"\x00\x02\xc8\x01" + b"u" * 200
    assert framing.awareness(b"ab") == b"\x01\x02ab"
    assert framing.saved(300) == b"\x64\xac\x02"
    assert framing.permission_denied("read-only") == b"\x02\x00\x09read-only"
    assert framing.chat_request(b"{}") == b"\x65\x02{}"  # varUint(101) + varString
    assert framing.chat_reply(b"x" * 200) == b"\x66\xc8\x01" + b"x" * 200


def test_empty_payloads_are_framing_not_content() -> None:
    # an empty buf is well framed; whether it is a valid update is the scanner's business
    assert framing.decode_message(b"\x00\x02\x00") == framing.SyncUpdate(b"")
    assert framing.decode_message(b"\x01\x00") == framing.Awareness(b"")


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (framing.permission_denied("x"), 2),  # auth is server -> client only
        (b"\x02\x00\x02no", 2),
        (b"\x07\x01", 7),  # unknown types are ignored whatever follows
        (b"\x66\x02{}", 102),  # a reply is server -> client only
        (vu(2**53 - 1), 2**53 - 1),
    ],
)
def test_other_message_types_are_ignored(frame: bytes, kind: int) -> None:
    assert framing.decode_message(frame) == framing.Ignored(kind)


# --- refusals: each with the rule it breaks --------------------------------------------------

LENGTH = "payload length does not match the frame"

REFUSED: list[tuple[bytes, str, str]] = [
    (b"", "empty frame", "truncated varint"),
    (b"\x80", "truncated message type", "truncated varint"),
    (b"\x80\x00", "non-minimal message type", "non-minimal varint"),
    (b"\xff" * 9, "message type over 8 bytes", "varint longer than 8 bytes"),
    (b"\x00", "sync without a sync type", "truncated varint"),
    (b"\x00\x03\x00", "sync type 3", "unknown sync message type"),
    (b"\x00\x00", "step 1 without a length", "truncated varint"),
    (b"\x00\x00\x02\x00", "step 1 length past the end", LENGTH),
    (b"\x00\x01\x00\x00", "step 2 with a trailing byte", LENGTH),
    (b"\x00\x02\x05abc", "update length past the end", LENGTH),
    (b"\x00\x02" + vu(2**53) + b"u", "update length above 2**53-1", "varint above 2**53-1"),
    (b"\x00\x02\x81\x00u", "non-minimal update length", "non-minimal varint"),
    (b"\x01", "awareness without a length", "truncated varint"),
    (b"\x01\x05ab", "awareness length past the end", LENGTH),
    (b"\x01\x01ab", "awareness with a trailing byte", LENGTH),
    (b"\x03\x00", "query awareness with a trailing byte", "trailing bytes after query-awareness"),
    (b"\x64", "saved without a counter", "truncated varint"),
    (b"\x64\x07\x00", "saved with a trailing byte", "trailing bytes after saved counter"),
    (b"\x64\x80\x00", "non-minimal saved counter", "non-minimal varint"),
    (b"\x65", "chat request without a length", "truncated varint"),
    (b"\x65\xff", "chat request length cut short", "truncated varint"),
    (b"\x65\x05{}", "chat request length past the end", LENGTH),
    (b"\x65\x01{}", "chat request with a trailing byte", LENGTH),
    (b"\x65\x81\x00{}", "non-minimal chat request length", "non-minimal varint"),
]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [(frame, reason) for frame, _, reason in REFUSED],
    ids=[r[1] for r in REFUSED],
)
def test_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(ProtocolViolation) as exc:
        framing.decode_message(frame)
    assert exc.value.reason == reason
    assert exc.value.close_code == 1002


def test_unknown_sync_type_is_refused_even_when_well_framed() -> None:
    for sync_type in (3, 4, 127, 128):
        with pytest.raises(ProtocolViolation, match=r"^unknown sync message type$"):
            framing.decode_message(b"\x00" + vu(sync_type) + b"\x00")
