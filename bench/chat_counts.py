"""Deterministic per-post counts of a chat post's server work (issue 9, item 8).

In process, on a real SQLite file, no HTTP and no readers: posts through ``ChatService`` (the
API's and type 101's shared path), first ``--waves`` waves of one post into each of ``--rooms``
rooms at once, then ``--sequential`` posts one after the other into one room. Prints, per
post: tasks created, trips to the writer's thread, commits, and (``--profile``) cProfile's
function calls. These do not move with the machine's load, unlike py-spy's samples:

    python bench/chat_counts.py --tree <checkout> [--rooms 20 --waves 10 --sequential 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="the collab checkout to count (default: this)")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--waves", type=int, default=10)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="also count function calls")
    return parser.parse_args()


async def _count(args: argparse.Namespace, tmp: Path) -> None:
    import cProfile  # here: bench/profile.py must not shadow the stdlib's profile (main)
    import pstats

    from collab.chat import Actor
    from collab.meta import Role
    from collab.services import Services
    from collab.settings import Settings

    services = Services.create(Settings(store=f"sqlite:///{tmp / 'c.db'}", purge_interval=0))
    await services.open()
    try:
        await services.webhooks.stop()
        db: Any = services.meta.db  # type: ignore[attr-defined]
        actor = Actor("u1", "User", None, Role.commenter)
        for r in range(args.rooms):  # loads each room's chat doc
            await services.chat.post(f"r{r}", actor, "warm up", f"w{r}")
        trips = [0]
        run = db._thread.run  # counted here: older trees have no ``Database.trips``

        async def counted(*a: Any) -> Any:
            trips[0] += 1
            return await run(*a)

        db._thread.run = counted
        tasks: Counter[str] = Counter()
        loop = asyncio.get_running_loop()

        def factory(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kw: Any
        ) -> asyncio.Task[Any]:
            tasks[getattr(coro, "__qualname__", "?")] += 1
            return asyncio.Task(coro, loop=loop, **kw)

        loop.set_task_factory(factory)  # type: ignore[arg-type]
        commits = db.commits
        profile = cProfile.Profile()
        if args.profile:
            profile.enable()
        posts = 0
        for w in range(args.waves):
            wave = (
                services.chat.post(f"r{r}", actor, f"m {w}", f"c{w}") for r in range(args.rooms)
            )
            await asyncio.gather(*wave)
            posts += args.rooms
        for n in range(args.sequential):
            await services.chat.post("r0", actor, f"s {n}", f"s{n}")
            posts += 1
        profile.disable()
        loop.set_task_factory(None)
        line = (
            f"{posts} posts: per post {sum(tasks.values()) / posts:.2f} tasks, "
            f"{trips[0] / posts:.2f} writer trips, {(db.commits - commits) / posts:.2f} commits"
        )
        if args.profile:
            line += f", {pstats.Stats(profile).total_calls / posts:.0f} calls"  # type: ignore[attr-defined]
        print(line)
        print("tasks:", dict(tasks.most_common()))
    finally:
        await services.close()


def main() -> int:
    args = _arguments()
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if args.tree is not None:
        sys.path.insert(0, str(args.tree.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_count(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
