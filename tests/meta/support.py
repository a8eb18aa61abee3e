"""What the meta contract tests share: a clock the test moves, a user to act as, and a race
of owners demoting each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio

from collab.errors import Conflict
from collab.meta import Role, Rooms, Users

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def add_user(meta: Users, subject: str = "alice", email: str | None = None) -> str:
    user = await meta.upsert_oidc_user(
        "https://idp", subject, name=subject, email=email, email_verified=True, picture=None
    )
    return user.id


async def owners_demote_each_other(first: Rooms, second: Rooms, rooms: int) -> list[str]:
    """In each of ``rooms`` rooms with owners a and b, demote a through ``first`` while b is
    demoted through ``second`` (one store twice, or two nodes), all at once; assert each room
    keeps exactly one owner. The outcomes: "ok" or "conflict" per demotion."""
    names = [f"r{i}" for i in range(rooms)]
    for room in names:
        await first.create_room(room, room, "a")
        await first.add_member(room, "b", Role.owner)
    outcomes: list[str] = []

    async def demote(store: Rooms, room: str, user: str) -> None:
        try:
            await store.update_member(room, user, Role.editor)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for room in names:
                tg.start_soon(demote, first, room, "a")
                tg.start_soon(demote, second, room, "b")
    for room in names:
        owners = [m for m in await second.list_members(room) if m.role == Role.owner]
        assert len(owners) == 1, room
    return outcomes


async def all_at_once(calls: Sequence[Callable[[], Awaitable[object]]]) -> list[str]:
    """Run every call concurrently (each write in flight at once: on PostgreSQL, racing
    transactions of the pool); the outcome of each, in order: "ok" or its exception's class
    name (a cap's LimitReached, say)."""
    outcomes = [""] * len(calls)

    async def run(index: int) -> None:
        try:
            await calls[index]()
            outcomes[index] = "ok"
        except Exception as exc:
            outcomes[index] = type(exc).__name__

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(len(calls)):
                tg.start_soon(run, index)
    return outcomes
