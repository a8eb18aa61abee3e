"""Read markers wait in their room's batch while the one before is written
(collab.chat.reads.MarkerBatches): one write per batch, each caller answered with its own
marker, failures reach every caller of the batch and never the next one's."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from collab.chat.reads import MarkerBatches
from collab.errors import RoomFailed

pytestmark = pytest.mark.anyio


class Store:
    """A flush that holds each batch until released, remembering what it was given."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, dict[str, int]]] = []
        self.release = asyncio.Event()
        self.fail: BaseException | None = None

    async def flush(self, room_id: str, wanted: dict[str, int]) -> dict[str, int]:
        self.batches.append((room_id, dict(wanted)))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {user: up_to * 10 for user, up_to in wanted.items()}


async def test_markers_arriving_during_a_write_are_written_together() -> None:
    store = Store()
    batches = MarkerBatches(store.flush)
    answers: dict[str, int] = {}

    async def mark(room: str, user: str, up_to: int, key: str) -> None:
        answers[key] = await batches.submit(room, user, up_to)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(mark, "r", "a", 1, "first")
            await asyncio.sleep(0.01)  # the first batch is being written...
            for n, (user, up_to) in enumerate([("a", 3), ("b", 2), ("a", 2), ("c", 1)]):
                tg.start_soon(mark, "r", user, up_to, f"later{n}")
            tg.start_soon(mark, "s", "a", 4, "other room")
            await asyncio.sleep(0.01)
            store.release.set()
    assert store.batches == [
        ("r", {"a": 1}),
        ("s", {"a": 4}),
        ("r", {"a": 3, "b": 2, "c": 1}),  # ...so these wait and go as one, a's highest kept
    ]
    assert answers == {
        "first": 10,
        "later0": 30,
        "later1": 20,
        "later2": 30,
        "later3": 10,
        "other room": 40,
    }


async def test_a_failed_write_fails_its_batch_only() -> None:
    store = Store()
    batches = MarkerBatches(store.flush)
    store.fail = RoomFailed("disk gone")
    store.release.set()
    with anyio.fail_after(5):
        with pytest.raises(RoomFailed, match="disk gone"):
            await batches.submit("r", "a", 1)
        store.fail = None
        assert await batches.submit("r", "a", 2) == 20


async def test_a_cancelled_writer_fails_its_waiters_instead_of_leaving_them() -> None:
    store = Store()
    batches = MarkerBatches(store.flush)
    with anyio.fail_after(5):
        first = asyncio.ensure_future(batches.submit("r", "a", 1))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(batches.submit("r", "b", 1))
        await asyncio.sleep(0.01)
        for task in asyncio.all_tasks():
            if task.get_coro().__qualname__ == "MarkerBatches._run":  # type: ignore[union-attr]
                task.cancel()
        with pytest.raises(RoomFailed):
            await first
        with pytest.raises(RoomFailed):
            await second
        store.release.set()
        assert await batches.submit("r", "a", 3) == 30  # a new writer starts


async def test_a_caller_that_goes_away_leaves_the_others_answered() -> None:
    store = Store()
    batches = MarkerBatches(store.flush)
    with anyio.fail_after(5):
        gone = asyncio.ensure_future(batches.submit("r", "a", 1))
        stays = asyncio.ensure_future(batches.submit("r", "b", 2))
        await asyncio.sleep(0.01)
        gone.cancel()
        store.release.set()
        assert await stays == 20
