"""Doc streams only this node writes, left out of the blocking read ("parked").

With room affinity (nginx's ``hash $room consistent``, deploy/) each doc is on one node, and
every entry that node reads from the doc's stream is its own: the blocking ``XREAD`` woke once
per edit only to drop the entry (bench/profiles/NODES.md, "Stop 18"). So a doc stream whose
reader has seen only its own entries for ``PARK_QUIET`` seconds, ``PARK_AFTER`` of them in a
row at least, is *parked*: left out of the ``XREAD`` and looked at every ``PARK_POLL`` seconds
instead, all parked streams in one ``POLL_SCRIPT`` call that walks each from its cursor inside
Redis and answers a new cursor and a status, never the entries: this node's own are skipped
there.

A stream is *unparked* (back into the ``XREAD``, the reader woken at once) when the script
finds:

- an entry of another node (a node that joined the doc, or one that does not host it: a
  deletion's ``gone``): the cursor stops just before it, so the reader reads it from there and
  nothing is skipped;
- a stream trimmed past the cursor (``MAXLEN``): the reader fetches a new cursor and the
  subscriber resyncs from the store, as after any gap;
- a key that is not a stream: set aside like any poisoned key;
- nothing new for ``PARK_IDLE`` seconds (an idle stream costs nothing in the ``XREAD``).

A failed poll unparks every stream and parks none for ``PARK_BACKOFF`` seconds (a Redis that
refuses scripts must not leave streams unread); a lost Redis unparks everything with the
reader's reconnect. What parking costs: another node's first entry into a parked doc waits up
to ``PARK_POLL`` longer than the ``XREAD`` would have kept it; the next ones come through the
``XREAD`` again.

``Parking`` is the bookkeeping alone (no I/O, a clock passed in); ``collab.fanout.streams``
runs the poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from collab.fanout.base import FanoutStats

PARK_AFTER = 20  # own entries in a row, at least, before a stream is parked ...
PARK_QUIET = 5.0  # ... and seconds since its subscription or another node's last entry
PARK_POLL = 0.2  # seconds between two looks at the parked streams
PARK_IDLE = 30.0  # seconds without a new entry after which a parked stream is unparked
PARK_BACKOFF = 60.0  # seconds nothing is parked after a poll failed
POLL_KEYS = 256  # parked streams per script call
POLL_COUNT = 1024  # entries walked per stream per call (the rest at the next poll)

OWN, FOREIGN, TRIMMED, BAD = 0, 1, 2, 3  # a parked stream's status in the script's answer

# KEYS: parked doc streams. ARGV[1]: this node's name; ARGV[2]: entries walked per stream;
# ARGV[2 + i]: the cursor of KEYS[i] (never 0-0: a stream is parked after reading entries).
# Per key {status, cursor}: OWN: only this node's entries follow the cursor, up to the new one;
# FOREIGN: another node's entry follows the new cursor; TRIMMED: entries follow the cursor but
# none at or before it is left (a trim may have taken unread ones); BAD: not a stream.
POLL_SCRIPT = """
local me, count = ARGV[1], tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local cursor = ARGV[2 + i]
  local status, last = 0, cursor
  local entries = redis.pcall('XRANGE', key, '(' .. cursor, '+', 'COUNT', count)
  if type(entries) == 'table' and entries.err then
    status = 3
  elseif #entries > 0 and #redis.call('XRANGE', key, '-', cursor, 'COUNT', 1) == 0 then
    status = 2
  else
    for _, entry in ipairs(entries) do
      local fields, node = entry[2], nil
      for j = 1, #fields - 1, 2 do
        if fields[j] == 'node' then
          node = fields[j + 1]
          break
        end
      end
      if node ~= me then
        status = 1
        break
      end
      last = entry[1]
    end
  end
  out[i] = {status, last}
end
return out
"""


@dataclass(slots=True)
class _Stream:
    quiet_since: float  # the subscription, or another node's last entry
    own_run: int = 0  # own entries read in a row
    active_at: float = 0.0  # parked: when a poll last found new entries


class Parking:
    """Which doc streams are parked, from what the reader and the polls saw of them."""

    def __init__(
        self,
        *,
        after: int = PARK_AFTER,
        quiet: float = PARK_QUIET,
        idle: float = PARK_IDLE,
        backoff: float = PARK_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.after, self.quiet, self.idle, self.backoff = after, quiet, idle, backoff
        self.clock = clock
        self.parked: set[str] = set()
        self.stats = FanoutStats()  # ``parks`` and ``unparks`` counted (the fan-out's own)
        self._streams: dict[str, _Stream] = {}
        self._off_until = 0.0

    def watch(self, skey: str) -> None:
        """A subscription (new, or its cursor fetched anew): read, and quiet from now."""
        self.parked.discard(skey)
        self._streams[skey] = _Stream(self.clock())

    def forget(self, skey: str) -> None:
        self.parked.discard(skey)
        self._streams.pop(skey, None)

    def read(self, skey: str, own: int, foreign: int) -> None:
        """The reader delivered ``own`` and ``foreign`` entries of ``skey``; parks it when
        the last ``after`` (at least) were this node's and no other node wrote for ``quiet``."""
        now = self.clock()
        stream = self._streams.get(skey)
        if stream is None:
            stream = self._streams[skey] = _Stream(now)
        if foreign:
            stream.quiet_since, stream.own_run = now, 0
            return
        stream.own_run += own
        if (
            stream.own_run >= self.after
            and now - stream.quiet_since >= self.quiet
            and now >= self._off_until
        ):
            self.parked.add(skey)
            stream.active_at = now
            self.stats.parks += 1

    def polled(self, skey: str, moved: bool) -> bool:
        """A poll found only this node's entries (``moved``: some); whether ``skey`` stays
        parked (not once it has been idle for ``idle``)."""
        stream = self._streams.get(skey)
        if stream is None or skey not in self.parked:
            return False
        now = self.clock()
        if moved:
            stream.active_at = now
            return True
        if now - stream.active_at < self.idle:
            return True
        self.unpark(skey)
        return False

    def unpark(self, skey: str) -> None:
        """Back into the read; parked again only after ``quiet`` and ``after`` anew."""
        if skey in self.parked:
            self.parked.discard(skey)
            self.stats.unparks += 1
        stream = self._streams.get(skey)
        if stream is not None:
            stream.quiet_since, stream.own_run = self.clock(), 0

    def unpark_all(self, backoff: bool = False) -> None:
        """Everything back into the read (a lost Redis; ``backoff``: a poll failed, so
        nothing is parked for ``backoff`` seconds)."""
        for skey in list(self.parked):
            self.unpark(skey)
        if backoff:
            self._off_until = self.clock() + self.backoff


def poll_args(node: bytes, cursors: Iterable[bytes]) -> list[bytes]:
    """``POLL_SCRIPT``'s ARGV for streams at ``cursors``."""
    return [node, str(POLL_COUNT).encode(), *cursors]


def poll_answers(reply: object, count: int) -> list[tuple[int, bytes]]:
    """``POLL_SCRIPT``'s reply as (status, cursor) per stream; ValueError if it is not that."""
    if not isinstance(reply, list) or len(reply) != count:
        raise ValueError("unexpected poll reply")
    answers = []
    for item in reply:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError("unexpected poll reply")
        status, cursor = item
        if status not in (OWN, FOREIGN, TRIMMED, BAD) or not isinstance(cursor, bytes):
            raise ValueError("unexpected poll reply")
        answers.append((status, cursor))
    return answers
