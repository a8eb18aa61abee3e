"""Who is in which room, per node, in Redis: what a live stream (``/ws/_me``) shows as ``here``.

Each node keeps, for every room it holds sockets in, one field of the room's hash
``{prefix}:here:{room}``: its own summary (bytes it encoded: who, on which docs; bounded by the
caller), written when its sockets change and again every refresh, the hash expiring after
``HERE_TTL`` unless some node rewrites it. A room's summaries are read in one pipelined round
trip for a stream's rooms. A node's mark (``{prefix}:here-mark:{node}``), set at every tick,
tells it when Redis lost its summaries (restarted empty, or the mark was dropped because the
others took the node for dead): then it writes them all again. Every method answers None or
False when Redis does not answer, never raises.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("collab.fanout")

HERE_TTL = 60.0  # seconds a room's summaries live unless rewritten (each node refreshes its own)


def here_key(prefix: str, room: str) -> str:
    return f"{prefix}:here:{room}"


def mark_key(prefix: str, node: str) -> str:
    return f"{prefix}:here-mark:{node}"


class HereBoard:
    """The Fanout methods for room presence (``RedisFanout`` inherits them)."""

    redis: Redis
    prefix: str
    node: str

    async def put_here(self, summaries: dict[str, bytes | None]) -> bool:
        """Set (None: remove) this node's summary of each room; whether Redis took them."""
        ttl = int(HERE_TTL * 1000)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room, summary in summaries.items():
                    key = here_key(self.prefix, room)
                    if summary is None:
                        pipe.hdel(key, self.node)
                    else:
                        pipe.hset(key, self.node, summary)
                        pipe.pexpire(key, ttl)
                await pipe.execute()
        except RedisError as exc:
            log.debug("fan-out: could not share room presence: %r", exc)
            return False
        return True

    async def read_here(self, rooms: list[str]) -> dict[str, dict[str, bytes]] | None:
        """Each room's summaries by node (this node's left out); None when Redis is down."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hgetall(here_key(self.prefix, room))
                found: list[Any] = await pipe.execute()
        except RedisError as exc:
            log.debug("fan-out: could not read room presence: %r", exc)
            return None
        out: dict[str, dict[str, bytes]] = {}
        for room, fields in zip(rooms, found, strict=True):
            nodes = {
                node.decode(errors="replace"): value
                for node, value in (fields or {}).items()
                if isinstance(node, bytes) and isinstance(value, bytes)
            }
            nodes.pop(self.node, None)
            if nodes:
                out[room] = nodes
        return out

    async def mark_here(self) -> bool | None:
        """Renew this node's mark; True when it was missing (write every summary again),
        None when Redis does not answer."""
        try:
            before = await self.redis.set(
                mark_key(self.prefix, self.node), b"1", px=int(HERE_TTL * 1000), get=True
            )
        except RedisError:
            return None
        return before is None

    async def drop_here(self, node: str, rooms: list[str]) -> None:
        """A dead node's summaries go (and its mark: back, it writes them all again)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hdel(here_key(self.prefix, room), node)
                pipe.delete(mark_key(self.prefix, node))
                await pipe.execute()
        except RedisError as exc:
            log.debug("fan-out: could not drop %s's room presence: %r", node, exc)
