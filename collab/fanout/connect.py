"""The Redis clients a node opens: timeouts that fail fast, and no retries of redis-py's own.

redis-py 8 turns "maintenance notifications" on by default (``enabled="auto"``), and with them
on, its pool hands out an idle connection without checking that the server is still at the
other end. After Redis restarts, each connection the pool held then fails its next command
once ("Connection closed by server"): a publish dropped, a read that has to start over. They
are a Redis Enterprise and Cloud feature collab does not use, so they are off, and the pool
reconnects a stale connection before using it.

A pipelined command's reply may be an error. WRONGTYPE concerns its one key (an operator's key
of another type under the name), and the round trip's other commands stand. Every other
refusal says this Redis takes none of them now: a replica after a failover left the URL on it
(READONLY), out of memory with ``maxmemory`` set (OOM), a replica that lost its primary
(MASTERDOWN), the ACL (NOPERM), a busy script (BUSY). Those fail the round trip as a lost
connection does (``fails_round_trip``): the node says it is unhealthy (the other nodes poll
the store), keeps what it was sending and tries again later.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry


def redis_client(
    url: str, *, timeout: float, connect_timeout: float, single_connection: bool = False
) -> Redis:
    """A client of ``url``: each command fails after ``timeout`` seconds, a connect after
    ``connect_timeout``; never retried by redis-py (the caller retries, and says it is down)."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=single_connection,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )


def one_key(exc: ResponseError) -> bool:
    """Whether Redis refused this command's key alone (module docstring), not every command."""
    return "WRONGTYPE" in str(exc)


def fails_round_trip(reply: object) -> bool:
    """Whether a pipelined reply fails its whole round trip (module docstring)."""
    return isinstance(reply, Exception) and not (
        isinstance(reply, ResponseError) and one_key(reply)
    )
