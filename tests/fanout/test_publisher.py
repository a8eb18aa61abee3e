"""The doc streams' writer (collab/fanout/publisher.py): what one round trip carries, and how
many tries a failed batch gets."""

from __future__ import annotations

from collections import deque

from collab.fanout import Entry, FanoutStats
from collab.fanout.connect import redis_client
from collab.fanout.publisher import (
    BATCH_BYTES,
    PUBLISH_BATCH,
    QUEUE_LIMIT,
    SEND_ATTEMPTS,
    StreamPublisher,
    take_batch,
)

MIB = 1024 * 1024


def queued(*sizes: int) -> deque[tuple[str, Entry]]:
    return deque((f"k{i}", Entry(i, "g", b"x" * size)) for i, size in enumerate(sizes))


def test_a_round_trip_carries_at_most_its_count_and_bytes_in_order() -> None:
    queue = queued(*[10] * (PUBLISH_BATCH + 5))
    assert [e.seq for _, e in take_batch(queue)] == list(range(PUBLISH_BATCH))
    assert len(queue) == 5
    per_trip = BATCH_BYTES // MIB
    queue = queued(*[MIB] * (per_trip + 3))
    assert len(take_batch(queue)) == per_trip
    assert len(take_batch(queue)) == 3


def test_an_entry_larger_than_a_round_trip_goes_alone() -> None:
    queue = queued(BATCH_BYTES + 1, 10)
    assert [e.seq for _, e in take_batch(queue)] == [0]
    assert [e.seq for _, e in take_batch(queue)] == [1]


def publisher() -> StreamPublisher:
    # Never connected: only the queue's bookkeeping is exercised here.
    client = redis_client("redis://127.0.0.1:1/0", timeout=0.1, connect_timeout=0.1)
    return StreamPublisher(client, FanoutStats())


def test_a_failed_batch_goes_back_in_front_and_is_dropped_after_its_tries() -> None:
    pub = publisher()
    for i in range(3):
        pub.put("k", Entry(i, "g", b"u"))
    for attempt in range(1, SEND_ATTEMPTS + 1):
        batch = pub.take()
        assert [e.seq for _, e in batch] == [0, 1, 2]
        pub.put("k", Entry(10 + attempt, "g", b"later"))  # queued while the send failed
        pub.failed(batch)
    assert pub.stats.publish_dropped == 3  # the batch, after its tries
    assert [e.seq for _, e in pub.take()] == [11, 12, 13]  # order kept, each its own tries


def test_a_batch_pushed_out_by_the_queue_limit_does_not_pass_its_tries_on() -> None:
    pub = publisher()
    pub.put("k", Entry(0, "g", b"u"))
    pub.failed(pub.take())  # one failed try of the batch [0]
    for i in range(1, QUEUE_LIMIT + 1):  # a long outage: entry 0 is pushed out
        pub.put("k", Entry(i, "g", b"u"))
    first = pub.take()
    assert first[0][1].seq == 1
    for _ in range(SEND_ATTEMPTS - 1):
        pub.failed(first)
        first = pub.take()
    assert pub.stats.publish_dropped == 1  # entry 0 only: this batch has tries left
