"""y-websocket framing, sans-IO: bytes in, message objects out, and the encoders back.

Only framing lives here: the payloads (Yjs updates, state vectors, awareness states) are
checked by ``collab.wire.update`` and ``collab.wire.awareness`` before anything else reads
them. Frame layout (YJS-WIRE §1.2):

    0 sync       0 0 buf(state vector) | 0 1 buf(update) | 0 2 buf(update)
    1 awareness  1 buf(awareness update)
    2 auth       server -> client only: 2 0 str(reason)
    3 query      3
    100 saved    collab's own: 100 vu(counter), both ways (clients that opted in only)
    101 request  collab's own, client -> server: 101 str(JSON request) (chat: post, edit...)
    102 reply    collab's own, server -> client: 102 str(JSON reply) (clients that opted in only)
    103 access   collab's own, server -> client: 103 str(JSON {"role", "write"}) (opted in)

A frame is exactly one message: a length that runs past the end, or bytes after the payload,
is a protocol violation (pycrdt's reader would truncate silently; lib0 would throw).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from collab.errors import ProtocolViolation
from collab.wire.lib0 import MalformedInput, encode_varuint, read_varuint

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3
MSG_SAVED = 100
MSG_CHAT_REQUEST = 101
MSG_CHAT_REPLY = 102
MSG_ACCESS = 103

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2


@dataclass(frozen=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True)
class Awareness:
    payload: bytes


@dataclass(frozen=True)
class QueryAwareness:
    pass


@dataclass(frozen=True)
class SavedRequest:
    counter: int


@dataclass(frozen=True)
class ChatRequest:
    """The UTF-8 bytes of a request's JSON text, length-checked only: read them with
    ``collab.wire.request.read_request``, which knows the size cap."""

    body: bytes


@dataclass(frozen=True)
class Ignored:
    """A message type collab does not handle (auth from a client, JupyterLab's 2, future)."""

    type: int


Message = (
    SyncStep1
    | SyncStep2
    | SyncUpdate
    | Awareness
    | QueryAwareness
    | SavedRequest
    | ChatRequest
    | Ignored
)


def _buf(frame: bytes, pos: int) -> bytes:
    length, pos = read_varuint(frame, pos)
    if length != len(frame) - pos:
        raise ProtocolViolation("payload length does not match the frame")
    return frame[pos:]


def decode_message(frame: bytes) -> Message:
    """One binary WebSocket frame -> one message; ProtocolViolation on bad framing."""
    try:
        kind, pos = read_varuint(frame, 0)
        if kind == MSG_SYNC:
            sync_type, pos = read_varuint(frame, pos)
            payload = _buf(frame, pos)
            if sync_type == SYNC_STEP1:
                return SyncStep1(payload)
            if sync_type == SYNC_STEP2:
                return SyncStep2(payload)
            if sync_type == SYNC_UPDATE:
                return SyncUpdate(payload)
            raise ProtocolViolation("unknown sync message type")
        if kind == MSG_AWARENESS:
            return Awareness(_buf(frame, pos))
        if kind == MSG_QUERY_AWARENESS:
            if pos != len(frame):
                raise ProtocolViolation("trailing bytes after query-awareness")
            return QueryAwareness()
        if kind == MSG_SAVED:
            counter, pos = read_varuint(frame, pos)
            if pos != len(frame):
                raise ProtocolViolation("trailing bytes after saved counter")
            return SavedRequest(counter)
        if kind == MSG_CHAT_REQUEST:
            return ChatRequest(_buf(frame, pos))
        return Ignored(kind)
    except MalformedInput as exc:
        raise ProtocolViolation(exc.reason) from None


def _with_buf(prefix: bytes, payload: bytes) -> bytes:
    return prefix + encode_varuint(len(payload)) + payload


def sync_step1(state_vector: bytes) -> bytes:
    return _with_buf(bytes((MSG_SYNC, SYNC_STEP1)), state_vector)


def sync_step2(update: bytes) -> bytes:
    return _with_buf(bytes((MSG_SYNC, SYNC_STEP2)), update)


def sync_update(update: bytes) -> bytes:
    return _with_buf(bytes((MSG_SYNC, SYNC_UPDATE)), update)


def awareness(payload: bytes) -> bytes:
    return _with_buf(bytes((MSG_AWARENESS,)), payload)


def permission_denied(reason: str) -> bytes:
    return _with_buf(bytes((MSG_AUTH, 0)), reason.encode("utf-8"))


def saved(counter: int) -> bytes:
    return encode_varuint(MSG_SAVED) + encode_varuint(counter)


def chat_reply(body: bytes) -> bytes:
    """A reply (type 102) carrying ``body``, the UTF-8 bytes of its JSON text."""
    return _with_buf(encode_varuint(MSG_CHAT_REPLY), body)


def chat_request(body: bytes) -> bytes:
    """A request (type 101): what a client sends (tests and the bench build theirs here)."""
    return _with_buf(encode_varuint(MSG_CHAT_REQUEST), body)


def access_changed(role: str, write: bool) -> bytes:
    """Tell an opted-in socket that its user's role in the room changed, and whether it may
    now write this doc: an open tab switches its editor (or chat box) at once."""
    payload = json.dumps({"role": role, "write": write}, separators=(",", ":")).encode("utf-8")
    return _with_buf(encode_varuint(MSG_ACCESS), payload)
