"""What the awareness gap check costs a node (issue 15): the CPU of handing a full-size batch
(``AWARENESS_MAXLEN`` changes) to an ``AwarenessChannel`` with the check and without it,
alternated, and the ``XINFO STREAM`` round trip alone. A batch below the full size asks
nothing (one comparison). Loopback Redis only; one key, deleted after.

    python -m bench.awareness_gaps [redis://127.0.0.1:6379/0] [rounds]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from redis.asyncio import Redis

from collab.fanout import AwarenessRecord, FanoutStats
from collab.fanout.channels import AwarenessChannel
from collab.fanout.records import encode_record
from collab.fanout.sharing import AWARENESS_MAXLEN

KEY = "bench-awareness-gaps:{r}/awx:d"


class Quiet:
    """An AwarenessWatcher that drops what it is given."""

    def on_awareness(self, record: AwarenessRecord) -> None:
        pass

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        pass

    def on_awareness_resync(self) -> None:
        pass

    def on_awareness_gap(self) -> None:
        pass


async def per_batch(
    client: Redis, batch: list[tuple[bytes, object]], after: bytes, full: int, rounds: int
) -> float:
    """CPU milliseconds per batch delivered (each check awaited, so each is counted)."""
    channel = AwarenessChannel(Quiet(), "b", FanoutStats(), client, KEY, full=full)
    start = time.process_time()
    for _ in range(rounds):
        channel.deliver(batch, after)
        await channel.checked()
    return 1000 * (time.process_time() - start) / rounds


async def main(url: str, rounds: int) -> None:
    client = Redis.from_url(url)
    await client.delete(KEY)
    try:
        added: list[tuple[bytes, object]] = []
        for n in range(2 * AWARENESS_MAXLEN):
            state = f'{{"n": {n}}}'.encode()
            value = encode_record(AwarenessRecord(1, n + 1, "u", state, "a", time.time() + 3600))
            fields: dict[Any, Any] = {b"c": b"1", b"v": value}
            added.append((await client.xadd(KEY, fields), fields))
        batch, after = added[AWARENESS_MAXLEN:], added[AWARENESS_MAXLEN - 1][0]
        off, on = [], []
        for _ in range(5):
            off.append(await per_batch(client, batch, after, 10**9, rounds))
            on.append(await per_batch(client, batch, after, AWARENESS_MAXLEN, rounds))
        start = time.perf_counter()
        for _ in range(rounds):
            await client.xinfo_stream(KEY)
        trip = 1000 * (time.perf_counter() - start) / rounds
        print(f"batch of {len(batch)} changes, CPU ms (median of 5 x {rounds}):")
        print(f"  without the check {statistics.median(off):.3f}  {[round(x, 3) for x in off]}")
        print(f"  with the check    {statistics.median(on):.3f}  {[round(x, 3) for x in on]}")
        print(f"XINFO STREAM round trip: {trip:.3f} ms")
    finally:
        await client.delete(KEY)
        await client.aclose()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(
        main(
            arguments[0] if arguments else "redis://127.0.0.1:6379/0",
            int(arguments[1]) if len(arguments) > 1 else 300,
        )
    )
