"""collab's chat requests (type 101): a JSON object in a lib0 string, bounded before it is read.

``framing`` has checked the string's length against the frame; this reads its bytes: at most
``max_bytes`` (else ``MessageTooBig``, 1009), strict UTF-8, strict JSON (``strictjson``: no
NaN, no lone surrogates, no ``__proto__``) at most :data:`MAX_DEPTH` deep, and an object at the
top (else ``MalformedInput``, 1007). What the object asks for is the chat layer's to judge: an
unknown op or a missing field is answered, not closed.
"""

from __future__ import annotations

from typing import Any

from collab.errors import MessageTooBig
from collab.wire.lib0 import MalformedInput
from collab.wire.strictjson import canonical_json, strict_json

__all__ = ["MAX_DEPTH", "encode_reply", "read_request", "request_cap"]

MAX_DEPTH = 4  # a request is a flat object; a little room for what a later op may nest
_ENVELOPE = 4096  # op, client_id, ids, emoji and JSON punctuation around the text


def request_cap(max_message_length: int) -> int:
    """The largest request body: ``max_message_length`` characters of text spelled the longest
    way JSON.stringify may (6 bytes: a ``\\u00XX`` escape), plus the envelope."""
    return 6 * max_message_length + _ENVELOPE


def read_request(body: bytes, max_bytes: int) -> dict[str, Any]:
    """The request object in ``body``; MessageTooBig or MalformedInput otherwise."""
    if len(body) > max_bytes:
        raise MessageTooBig(f"chat request longer than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("chat request is not UTF-8") from None
    value = strict_json(text, MAX_DEPTH, "chat request")
    if not isinstance(value, dict):
        raise MalformedInput("chat request is not a JSON object")
    return value


def encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply's JSON text (type 102's payload), in the one spelling collab sends."""
    return canonical_json(reply)
