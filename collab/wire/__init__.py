"""The wire: every byte a client sends, checked before anything else reads it (YJS-WIRE.md).

Sans-IO and bounded: functions from bytes to values or ``MalformedInput``, no socket, no
document, no recursion, every count checked against the bytes left. Of the rest of collab it
imports only ``collab.errors`` (framing) and, for a type, ``collab.settings``. One module per
concern, each importing only modules listed before it:

    caps        Limits: the caps of YJS-WIRE §2, and limits_from(settings)
    lib0        varints, strings, Any values; MalformedInput, UnresolvedReference
    strictjson  JSON that JSON.parse, serde_json and Python read alike (Embed, Format, awareness)
    update      Yjs update v1 and state-vector scan -> UpdateInfo (§1.3-§1.6, §1.9)
    tombstones  the deleted clock ranges of a document (a deleted parent is legitimate)
    integrate   one DocIndex check: an update's structs integrated in yrs' order (§4)
    index       DocIndex: shared-type depth and pending structs across updates (§4)
    awareness   awareness payload scan and canonical re-encoding (§1.8)
    framing     y-websocket messages: decode_message and the frame encoders (§1.2)
    request     collab's chat requests (type 101): a bounded JSON object, and the reply's text

The names below are the package's public surface; ``framing`` is used as a module
(``framing.decode_message``, ``framing.sync_update(u)``...).
"""

from __future__ import annotations

from collab.wire import framing
from collab.wire.awareness import AwarenessEntry, encode_awareness, scan_awareness
from collab.wire.caps import Limits, limits_from
from collab.wire.index import DocIndex, IndexDelta
from collab.wire.lib0 import (
    MAX_CLOCK,
    MAX_SAFE_INT,
    MalformedInput,
    UnresolvedReference,
    encode_varuint,
    read_varuint,
    write_varuint,
)
from collab.wire.request import encode_reply, read_request, request_cap
from collab.wire.strictjson import canonical_json, strict_json
from collab.wire.update import (
    StructRef,
    UpdateInfo,
    deleted_length,
    scan_state_vector,
    scan_update,
)

__all__ = [
    "MAX_CLOCK",
    "MAX_SAFE_INT",
    "AwarenessEntry",
    "DocIndex",
    "IndexDelta",
    "Limits",
    "MalformedInput",
    "StructRef",
    "UnresolvedReference",
    "UpdateInfo",
    "canonical_json",
    "deleted_length",
    "encode_awareness",
    "encode_reply",
    "encode_varuint",
    "framing",
    "limits_from",
    "read_request",
    "read_varuint",
    "request_cap",
    "scan_awareness",
    "scan_state_vector",
    "scan_update",
    "strict_json",
    "write_varuint",
]
