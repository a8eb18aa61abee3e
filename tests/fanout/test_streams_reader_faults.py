"""The Redis Streams reader when Redis fails or refuses in the middle of its own recovery: a
refused read that sends it looking for a poisoned key, and Redis dying or refusing every command
right then. Its one task must live on, say when it cannot read, and set aside only keys that
really are not streams (each on a private redis-server)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import redis

from collab.fanout import Entry
from collab.fanout.entries import stream_key
from collab.fanout.streams import RedisFanout
from collab.names import DocKey
from tests.fanout.test_contract import Inbox
from tests.support.redisserver import PrivateRedis
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

GEN = "g1"
P, Q = DocKey("poisoned", "doc"), DocKey("healthy", "doc")


class DiesAfterARefusal(RedisFanout):
    """Redis goes away right after it refused an XREAD (WRONGTYPE), before the reader
    asks it which key is not a stream: the instant is chosen here, the failure is real."""

    server: PrivateRedis

    async def _set_aside_bad_keys(self) -> bool:
        if self.server.proc is not None and self.server.proc.poll() is None:
            self.server.kill()
        return await super()._set_aside_bad_keys()


async def test_the_reader_survives_redis_failing_while_it_sets_a_bad_key_aside(
    tmp_path: Path,
) -> None:
    """A refused XREAD (WRONGTYPE) sends the reader to ask which key is not a stream; Redis
    dies right then. That failure is a lost Redis like any other (unhealthy, cursors fetched
    anew), not the end of the node's one reader task: found in review, the error escaped the
    ``except ResponseError`` clause it was raised in and ended the task for good, while the
    node went on saying it was healthy."""
    server = PrivateRedis(tmp_path)
    server.start()
    a = RedisFanout(server.url, "a", max_update=1 << 20)
    b = DiesAfterARefusal(server.url, "b", max_update=1 << 20)
    b.server = server
    fine, poisoned = Inbox(), Inbox()
    try:
        for node in (a, b):
            await node.start()
        await wait_until(lambda: a.healthy and b.healthy, 10)
        await b.subscribe(Q, fine)
        await b.subscribe(P, poisoned)
        a.publish(Q, Entry(1, GEN, b"q1"))
        await wait_until(lambda: fine.seqs() == [1])
        client = redis.Redis.from_url(server.url)
        client.delete(stream_key("collab", P))
        client.set(stream_key("collab", P), "not a stream")  # the next XREAD: WRONGTYPE
        client.close()
        await wait_until(lambda: server.proc is not None and server.proc.poll() is not None)
        await anyio.sleep(0.2)  # the reader meets the dead Redis (the scenario itself)
        server.start()  # same port, empty
        await wait_until(lambda: a.healthy, 15)
        a.publish(Q, Entry(2, GEN, b"q2"))
        # Either the reader delivers again, or at least the node admits it cannot.
        await wait_until(
            lambda: 2 in fine.seqs() or not b.healthy,
            10,
            what=lambda: f"reader task: {reader_end(b)!r}, healthy={b.healthy}",
        )
    finally:
        await a.close()
        try:
            await b.close()  # raises the reader's error when the reader task had ended
        except redis.RedisError:
            await b._reader.aclose()
            await b._commands.aclose()
        server.stop()


def reader_end(node: RedisFanout) -> object:
    task = node._tasks[0]
    return task.exception() if task.done() else "running"


async def test_a_read_refused_for_a_moment_sets_no_healthy_stream_aside(
    tmp_path: Path,
) -> None:
    """Redis refuses the reader's commands for a moment (here the ACL; a Redis busy in a
    script answers BUSY alike, a replica that lost its primary MASTERDOWN). The refused XREAD
    sends the reader to ask which key is not a stream, and those answers are refusals too:
    they say nothing of the keys, so none is set aside and the read is retried; entries
    published meanwhile arrive once Redis answers. (Found in review: every stream, the
    wake-up stream included, was set aside for 30 s, and an XREAD left with no stream failed
    client-side, again and again.)"""
    server = PrivateRedis(tmp_path)
    server.start()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser("bee", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                      commands=["+@all"])  # fmt: skip
    bee_url = f"redis://bee:pw@127.0.0.1:{server.port}/0"
    a = RedisFanout(server.url, "a", max_update=1 << 20)
    b = RedisFanout(bee_url, "b", max_update=1 << 20)
    inbox = Inbox()
    try:
        for node in (a, b):
            await node.start()
        await wait_until(lambda: a.healthy and b.healthy, 10)
        await b.subscribe(Q, inbox)
        a.publish(Q, Entry(1, GEN, b"q1"))
        await wait_until(lambda: inbox.seqs() == [1])
        admin.acl_setuser("bee", enabled=True, commands=["-@all"])  # refused from now on
        await wait_until(lambda: b.stats.bad_keys > 0 or not b.healthy, 5)
        await anyio.sleep(0.5)  # refused a while (the scenario itself)
        admin.acl_setuser("bee", enabled=True, commands=["+@all"])
        a.publish(Q, Entry(2, GEN, b"q2"))
        await wait_until(
            lambda: 2 in inbox.seqs(),
            5,
            what=lambda: (
                f"bad_keys={b.stats.bad_keys} set aside={sorted(b._bad)}"
                f" healthy={b.healthy} errors={b.stats.errors}"
            ),
        )
        assert b.stats.bad_keys == 0  # no key was ever anything but a stream
    finally:
        admin.close()
        await a.close()
        await b.close()
        server.stop()


async def test_a_node_whose_every_key_is_set_aside_stays_healthy_and_reads_a_new_doc(
    tmp_path: Path,
) -> None:
    """Its wake-up stream poisoned (not a stream) and no doc subscribed: the reader sets the
    key aside and has nothing left to read, which is no failure (found in review: an XREAD of
    no stream failed client-side and the node took it for a lost Redis, again and again). A doc
    subscribed after that is read, within the block's second (no wake-up stream to poke)."""
    server = PrivateRedis(tmp_path)
    server.start()
    client = redis.Redis.from_url(server.url)
    client.set("collab:wake:b", "not a stream")
    a = RedisFanout(server.url, "a", max_update=1 << 20)
    b = RedisFanout(server.url, "b", max_update=1 << 20)
    inbox = Inbox()
    try:
        for node in (a, b):
            await node.start()
        await wait_until(lambda: b.stats.bad_keys == 1, 10)
        errors = b.stats.errors
        await anyio.sleep(1.5)
        assert (b.healthy, b.stats.errors) == (True, errors)
        await b.subscribe(Q, inbox)
        a.publish(Q, Entry(1, GEN, b"q1"))
        with anyio.fail_after(3):
            await wait_until(lambda: inbox.seqs() == [1])
        assert b.stats.errors == errors
    finally:
        client.close()
        await a.close()
        await b.close()
        server.stop()
