"""collab.wire.request: a chat request's body (type 101), bounded before it is read.

Too long is ``MessageTooBig`` (close 1009); not UTF-8, not strict JSON, too deep or not an object
is ``MalformedInput`` (the live doc closes with 1007). What the object asks is not judged here.
"""

from __future__ import annotations

import json

import pytest

from collab.errors import MessageTooBig
from collab.wire import MalformedInput, encode_reply, read_request, request_cap


def test_an_object_is_read_whatever_it_asks() -> None:
    body = json.dumps({"op": "shout", "client_id": "c", "text": "héllo 🎉"}).encode()
    assert read_request(body, 1000) == {"op": "shout", "client_id": "c", "text": "héllo 🎉"}
    assert read_request(b"{}", 2) == {}


def test_the_cap_fits_any_spelling_of_the_longest_text() -> None:
    longest = "\x01" * 100  # JSON.stringify writes each as \u0001: 6 bytes a character
    body = json.dumps({"op": "post", "client_id": "c" * 128, "text": longest}).encode()
    assert len(body) > 6 * 100 and read_request(body, request_cap(100))["text"] == longest
    astral = json.dumps({"text": "🎉" * 100}, ensure_ascii=False).encode()
    assert read_request(astral, request_cap(100))["text"] == "🎉" * 100
    assert request_cap(10_000) == 64_096


def test_over_the_cap_is_too_big() -> None:
    with pytest.raises(MessageTooBig) as exc:
        read_request(b'{"text":"' + b"x" * 100 + b'"}', 100)
    assert exc.value.close_code == 1009


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "chat request is not UTF-8"),
        (b"\xed\xa0\x80", "chat request is not UTF-8"),  # an encoded surrogate (CESU-8)
        (b"{", "invalid JSON in chat request"),
        (b"", "invalid JSON in chat request"),
        (b"[1]", "chat request is not a JSON object"),
        (b'"post"', "chat request is not a JSON object"),
        (b"null", "chat request is not a JSON object"),
        (b'{"a":{"b":{"c":{"d":{}}}}}', "chat request nested too deep"),
        (b'{"op":NaN}', "NaN/Infinity in JSON"),
        (b'{"text":"\\ud800"}', "lone surrogate in chat request"),
        (b'{"__proto__":{}}', '"__proto__" key'),
        (b'{"a":1} {"b":2}', "invalid JSON in chat request"),
    ],
)
def test_malformed_bodies_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        read_request(body, 1000)
    assert exc.value.reason == reason


def test_four_levels_are_enough() -> None:
    assert read_request(b'{"a":{"b":{"c":[]}}}', 100) == {"a": {"b": {"c": []}}}


def test_replies_are_compact_utf8() -> None:
    assert encode_reply({"client_id": "é", "id": "m", "seq": 1}) == (
        '{"client_id":"é","id":"m","seq":1}'.encode()
    )
