"""Cross-node fan-out of committed updates, chosen by URL and imported only when named.

``none`` (the default): one node, no fan-out, the single-node path unchanged. ``redis://``,
``rediss://`` or ``unix://``: the Redis Streams fan-out (``collab.fanout.streams``, needs the
``redis`` extra). ``LocalFanout`` (``collab.fanout.local``) is the in-process twin tests use.

    base.py     Entry, Notice, AwarenessRecord, their receivers, the Fanout Protocol
    entries.py  stream keys and entry fields, strictly decoded (sans-IO)
    records.py  notices and awareness records as Redis holds them, the Lua scripts (sans-IO)
    local.py    LocalBus + LocalFanout: several nodes in one process
    streams.py  RedisFanout: one stream per doc, one XREAD loop per node
    publisher.py  its writer: queued entries, pipelined, sent again after a failure
    connect.py  the Redis clients it opens
    sharing.py  its notices, shared awareness and heartbeats
    limits.py   its rate limits: one bucket per key in Redis, the node's own while Redis is down
"""

from __future__ import annotations

import importlib.util
import os
import socket
import uuid

from collab.fanout.base import (
    ACCESS,
    FEED,
    GONE,
    READS,
    RESET,
    ROLE,
    ROOM_GONE,
    UPDATE,
    AwarenessRecord,
    AwarenessWatcher,
    Entry,
    Fanout,
    FanoutStats,
    Notice,
    NoticeWatcher,
    Subscriber,
)
from collab.fanout.entries import node_name

__all__ = [
    "ACCESS",
    "FEED",
    "GONE",
    "READS",
    "RESET",
    "ROLE",
    "ROOM_GONE",
    "UPDATE",
    "AwarenessRecord",
    "AwarenessWatcher",
    "Entry",
    "Fanout",
    "FanoutError",
    "FanoutStats",
    "Notice",
    "NoticeWatcher",
    "Subscriber",
    "check_fanout",
    "new_node_id",
    "open_fanout",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")


class FanoutError(Exception):
    """A fanout URL collab cannot serve (unknown scheme, driver not installed)."""


def check_fanout(url: str) -> None:
    """FanoutError unless ``url`` names a fan-out this installation can open."""
    text = url.strip()
    if text in {"", "none"}:
        return
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme not in REDIS_SCHEMES:
        raise FanoutError(f"unknown fanout {text!r} (expected none or redis://host:port/db)")
    if importlib.util.find_spec("redis") is None:
        raise FanoutError("--fanout redis://... needs redis-py: pip install 'collab[redis]'")


def new_node_id() -> str:
    """This process's name on the channel: host, pid and a random part (unique per start, so
    a restarted node never mistakes its predecessor's entries for its own)."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "._-")[:32] or "node"
    return node_name(f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}")


def open_fanout(
    url: str, *, node: str, prefix: str = "collab", max_update: int = 64 * 1024 * 1024
) -> Fanout | None:
    """The Fanout a URL names (not yet started); None for ``none``. FanoutError as above."""
    check_fanout(url)
    text = url.strip()
    if text in {"", "none"}:
        return None
    from collab.fanout.streams import RedisFanout

    return RedisFanout(text, node, prefix=prefix, max_update=max_update)
