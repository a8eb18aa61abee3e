"""Notices and awareness records as Redis holds them: keys, fields, values, and the scripts.

Sans-IO and strict like ``entries``: whatever is read back from Redis is shared input, so each
decoder accepts exactly what its encoder writes (checked for type, form and size) and raises
``BadEntry`` otherwise; the reader skips and counts such a value, it never stalls on one.

    <prefix>:notices                  one stream for every node: kind, room, user, node, at
                                      (room or user empty where the kind allows it)
    <prefix>:{<room>}/aw:<doc>        hash: client id -> record (the doc's current states)
    <prefix>:{<room>}/awx:<doc>       stream of changes: c (client id), v (record)
    <prefix>:alive:<node>             a node's heartbeat (expires unless renewed)

A reader learns that notices were trimmed (or deleted) before it read them from the stream
itself (``trimmed_past``, on ``XINFO STREAM``'s reply).

A record is ``principal \\n node \\n clock \\n expires \\n state`` (state empty: removed), so the
scripts find the owning principal and node without a JSON parser. ``/`` never occurs in a doc
name, so none of these keys is ever a doc's stream (``<prefix>:{<room>}:<doc>``).
"""

from __future__ import annotations

import json
import math
import re

from collab.fanout.base import (
    ACCESS,
    FEED,
    NOTICE_KINDS,
    READS,
    ROLE,
    ROOM_GONE,
    AwarenessRecord,
    Notice,
)
from collab.fanout.entries import BadEntry
from collab.names import NAME_RE, DocKey

_NODE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_PRINCIPAL = re.compile(rb"[A-Za-z0-9._:@-]{1,128}")
_NUMBER = re.compile(rb"[0-9]{1,16}")
_AT = re.compile(rb"[0-9]{1,12}(\.[0-9]{1,9})?")
_STREAM_ID = re.compile(rb"([0-9]{1,20})-([0-9]{1,20})")
_NOTICE_FIELDS = {b"kind", b"room", b"user", b"node", b"at"}
MAX_CLOCK = 2**53 - 1  # what a y-protocols client id or clock may be
MAX_STATE = 64 * 1024  # a stamped state: 16 KiB as sent, plus the server's ``user``

# Set (or remove) one client's shared state unless another principal holds its id; append the
# change to the doc's change stream. Returns 1 (done), 0 (another principal's id), -1 (the doc
# holds ``cap`` states already). A removal of a state that another node of the same principal
# set since (a tab that moved) is not this node's to make: 1, nothing changed. KEYS: hash,
# stream. ARGV: client, record, principal, removal ("1"/"0"), cap, ttl (ms), maxlen, node.
SET_SCRIPT = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local cut = string.find(cur, '\\n', 1, true)
  if not cut or string.sub(cur, 1, cut - 1) ~= ARGV[3] then return 0 end
  if ARGV[4] == '1' then
    local stop = string.find(cur, '\\n', cut + 1, true)
    if not stop or string.sub(cur, cut + 1, stop - 1) ~= ARGV[8] then return 1 end
  end
elseif ARGV[4] ~= '1' and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return -1
end
if ARGV[4] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'c', ARGV[1], 'v', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""

# Drop the states of the given clients that are still set through ARGV[1] (a dead node).
# KEYS: hash. ARGV: node, client ids... Returns how many went.
FORGET_SCRIPT = """
local gone = 0
for i = 2, #ARGV do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then
    local a = string.find(cur, '\\n', 1, true)
    local b = a and string.find(cur, '\\n', a + 1, true)
    if b and string.sub(cur, a + 1, b - 1) == ARGV[1] then
      redis.call('HDEL', KEYS[1], ARGV[i])
      gone = gone + 1
    end
  end
end
return gone
"""


def notice_key(prefix: str) -> str:
    return f"{prefix}:notices"


def awareness_keys(prefix: str, key: DocKey) -> tuple[str, str]:
    """(the doc's hash of states, its stream of changes)."""
    return f"{prefix}:{{{key.room}}}/aw:{key.doc}", f"{prefix}:{{{key.room}}}/awx:{key.doc}"


def alive_key(prefix: str, node: str) -> str:
    return f"{prefix}:alive:{node}"


def probe_key(prefix: str, node: str) -> str:
    """What a node writes to learn that Redis takes writes again (``publisher``)."""
    return f"{prefix}:probe:{node}"


def encode_notice(notice: Notice) -> dict[bytes, bytes]:
    return {
        b"kind": notice.kind.encode(),
        b"room": notice.room.encode(),
        b"user": notice.user.encode(),
        b"node": notice.node.encode(),
        b"at": f"{notice.sent_at:.6f}".encode(),
    }


def decode_notice(fields: object) -> Notice:
    """The Notice ``fields`` encodes; BadEntry for anything else."""
    if not isinstance(fields, dict) or set(fields) != _NOTICE_FIELDS:
        raise BadEntry("unexpected fields")
    kind = _bytes(fields.get(b"kind"), "kind").decode("ascii", "replace")
    if kind not in NOTICE_KINDS:
        raise BadEntry("unknown kind")
    room = _bytes(fields.get(b"room"), "room").decode("utf-8", "replace")
    if room and not NAME_RE.fullmatch(room):
        raise BadEntry("bad room")
    raw_user = _bytes(fields.get(b"user"), "user")
    user = _form(raw_user, _PRINCIPAL, "user").decode() if raw_user else ""
    if not _names_what_it_must(kind, room, user):
        raise BadEntry(f"a {kind} notice without what it names")
    node = _form(fields.get(b"node"), _NODE, "node").decode()
    sent_at = float(_form(fields.get(b"at"), _AT, "at"))
    return Notice(kind, room, user, node, sent_at)


def stream_id(raw: object) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a pair that orders like Redis orders ids."""
    found = _STREAM_ID.fullmatch(raw.encode() if isinstance(raw, str) else _bytes(raw, "id"))
    if not found:
        raise BadEntry("bad stream id")
    return int(found[1]), int(found[2])


def trimmed_past(info: object, after: bytes) -> bool:
    """Whether ``XINFO STREAM``'s reply ``info`` says an entry newer than ``after`` (a reader's
    cursor: the last id it read, or 0-0 for a stream that was empty) may have been removed
    before the reader read it.

    A trim (``MAXLEN``) removes the oldest entries only, so an entry past the cursor can go
    only after every entry up to the cursor went: while the stream still holds an entry at or
    before the cursor, nothing unread was trimmed (exact). Once it does not, the reader was a
    whole ``MAXLEN`` behind (or read right up to the trim point a moment ago): said to be a
    gap. From a cursor of 0-0, a gap is any entry ever removed (Redis 7.0's ``entries-added``
    against ``length``). A deletion (``XDEL``) past the cursor is Redis 7.0's
    ``max-deleted-entry-id`` (which trims do not move). An unreadable or empty reply: a gap."""
    if not isinstance(info, dict):
        return True
    try:
        cursor = stream_id(after)
        deleted = _info(info, "max-deleted-entry-id")
        if deleted is not None and stream_id(deleted) > cursor:
            return True
        first = _info(info, "first-entry")
        if not isinstance(first, (list, tuple)) or not first:
            return True  # emptied since the read (or unreadable): cannot tell
        if cursor == (0, 0):
            added, length = _info(info, "entries-added"), _info(info, "length")
            return not isinstance(added, int) or not isinstance(length, int) or added > length
        return stream_id(first[0]) > cursor
    except (BadEntry, TypeError, IndexError, KeyError):
        return True


def _info(info: dict[object, object], name: str) -> object:
    """A field of ``XINFO STREAM``'s reply (redis-py names them as str, a raw reply as bytes)."""
    return info.get(name, info.get(name.encode()))


def _names_what_it_must(kind: str, room: str, user: str) -> bool:
    """``role``: a room and a user; ``room_gone``: a room only; ``access``: a user or a room
    (a room's tokens); ``feed``: a room or a user, not both; ``reads``: a user only."""
    if kind == ROLE:
        return bool(room and user)
    if kind == ROOM_GONE:
        return bool(room) and not user
    if kind == ACCESS:
        return bool(room or user)
    if kind == FEED:
        return bool(room) != bool(user)
    if kind == READS:
        return bool(user) and not room
    return False


def encode_record(record: AwarenessRecord) -> bytes:
    head = f"{record.principal}\n{record.node}\n{record.clock}\n{record.expires:.3f}\n"
    return head.encode() + (record.state or b"")


def decode_client(raw: object) -> int:
    client = int(_form(raw, _NUMBER, "client id"))
    if client > MAX_CLOCK:
        raise BadEntry("client id out of range")
    return client


def decode_record(client: int, raw: object) -> AwarenessRecord:
    """The record ``raw`` (a hash value or a change's ``v``) encodes; BadEntry otherwise.
    A state must be a JSON object: it is relayed to clients as it is."""
    value = _bytes(raw, "record")
    if len(value) > MAX_STATE + 512:
        raise BadEntry("record too large")
    parts = value.split(b"\n", 4)
    if len(parts) != 5:
        raise BadEntry("bad record")
    principal = _form(parts[0], _PRINCIPAL, "principal").decode()
    node = _form(parts[1], _NODE, "node").decode()
    clock = int(_form(parts[2], _NUMBER, "clock"))
    expires = float(_form(parts[3], _AT, "expiry"))
    if clock > MAX_CLOCK or not math.isfinite(expires):
        raise BadEntry("clock out of range")
    state: bytes | None = parts[4] or None
    if state is not None:
        try:
            parsed = json.loads(state)
        except (ValueError, RecursionError):
            raise BadEntry("state is not JSON") from None
        if not isinstance(parsed, dict):
            raise BadEntry("state is not a JSON object")
    return AwarenessRecord(client, clock, principal, state, node, expires)


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise BadEntry(f"missing {name}")
    return value


def _form(value: object, form: re.Pattern[bytes], name: str) -> bytes:
    found = _bytes(value, name)
    if not form.fullmatch(found):
        raise BadEntry(f"bad {name}")
    return found
