"""Stream entries as Redis holds them: the key of a doc's stream, and entry <-> fields.

Sans-IO and strict, because a stream is shared input: another process (or a person with
``redis-cli``) may write anything there. ``decode_entry`` accepts exactly the fields
``encode_entry`` writes, each checked for type, form and size, and raises ``BadEntry``
otherwise; the reader skips and counts such an entry, it never stalls on one.

    key:    <prefix>:{<room>}:<doc>      the room is the hash tag: one slot per room
    fields: kind   update | gone | reset
            seq    decimal, 1 .. 2**63-1 (a control entry: the doc's head, may be 0)
            gen    the doc's generation, [A-Za-z0-9_-]{1,64}
            node   the publisher, [A-Za-z0-9._:-]{1,64}
            at     the publisher's clock, seconds (decimal)
            update the emitted Yjs update (absent: read it from the store)
"""

from __future__ import annotations

import math
import re

from collab.fanout.base import KINDS, UPDATE, Entry
from collab.names import DocKey

_GENERATION = re.compile(rb"[A-Za-z0-9_-]{1,64}")
_NODE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_SEQ = re.compile(rb"[0-9]{1,19}")
_AT = re.compile(rb"[0-9]{1,12}(\.[0-9]{1,9})?")
_FIELDS = {b"kind", b"seq", b"gen", b"node", b"at", b"update"}
MAX_SEQ = 2**63 - 1


class BadEntry(ValueError):
    """A stream entry that is not one collab wrote (or not one this version understands)."""


def stream_key(prefix: str, key: DocKey) -> str:
    return f"{prefix}:{{{key.room}}}:{key.doc}"


def node_name(text: str) -> str:
    """``text`` if it is a valid node name, else ValueError (it goes into every entry)."""
    if not _NODE.fullmatch(text.encode()):
        raise ValueError(f"a node name is 1-64 of A-Z a-z 0-9 . _ : - (got {text!r})")
    return text


def encode_entry(entry: Entry) -> dict[bytes, bytes]:
    fields = {
        b"kind": entry.kind.encode(),
        b"seq": str(entry.seq).encode(),
        b"gen": entry.generation.encode(),
        b"node": entry.node.encode(),
        b"at": f"{entry.sent_at:.6f}".encode(),
    }
    if entry.update is not None:
        fields[b"update"] = entry.update
    return fields


def decode_entry(fields: object, max_update: int) -> Entry:
    """The Entry ``fields`` (a reply's field map) encodes; BadEntry for anything else."""
    if not isinstance(fields, dict) or not set(fields) <= _FIELDS:
        raise BadEntry("unexpected fields")
    kind = _field(fields, b"kind")
    if kind.decode("ascii", "replace") not in KINDS:
        raise BadEntry("unknown kind")
    seq_text = _field(fields, b"seq", _SEQ)
    seq = int(seq_text)
    if seq > MAX_SEQ or (seq < 1 and kind == UPDATE.encode()):
        raise BadEntry("seq out of range")
    generation = _field(fields, b"gen", _GENERATION).decode()
    node = _field(fields, b"node", _NODE).decode()
    sent_at = float(_field(fields, b"at", _AT))
    if not math.isfinite(sent_at):
        raise BadEntry("bad clock")
    update = fields.get(b"update")
    if update is not None:
        if not isinstance(update, bytes) or not update or len(update) > max_update:
            raise BadEntry("bad update")
        if kind != UPDATE.encode():
            raise BadEntry("a control entry carries no update")
    return Entry(seq, generation, update, kind.decode(), node, sent_at)


def _field(
    fields: dict[object, object], name: bytes, form: re.Pattern[bytes] | None = None
) -> bytes:
    value = fields.get(name)
    if not isinstance(value, bytes):
        raise BadEntry(f"missing {name.decode()}")
    if form is not None and not form.fullmatch(value):
        raise BadEntry(f"bad {name.decode()}")
    return value
