"""Instructions per update on collab's in-process update path, counted by callgrind.

Wall-clock latency on a shared 2-core machine is noisy (bench/run.py's spreads overlap at
most points); instruction counts are not: the same code and inputs give the same count.
This drives N text updates through one loaded doc (memory store: scan, check, apply, group
commit, relay), under ``valgrind --tool=callgrind`` for two values of N, and reports
(count(N2) - count(N1)) / (N2 - N1): the instructions one update costs, startup excluded (the
median of three hash seeds). The N frames are made beforehand, outside valgrind, so the count
is the server's alone. ``--baseline REF`` measures a git ref the same way (a throwaway
worktree on PYTHONPATH) and prints the ratio.

- Update path: the writer's peer and one reader's, without sockets (relayed frames stay
  queued): what one update costs up to the reader's queue.
- ``--fanout K`` also relays each update to K sockets (fakes that take every frame at once)
  through their sender tasks, and to one socket: the instructions per update to K sockets,
  and per delivery, (K sockets - 1 socket) / (K - 1).

    python bench/sync_path.py [--baseline f318630] [--fanout 10] [--loop uvloop]
                              [--n1 200 --n2 1200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FRAMES = r"""
import sys
from typing import Any
from pycrdt import Doc, Text

with open(sys.argv[2], "wb") as out:
    source: Doc[Any] = Doc(client_id=3_141_592_653)  # fixed (a 5-byte varint, like Yjs's)
    text = source.get("t", type=Text)
    for _ in range(int(sys.argv[1])):  # one keystroke each, as y-websocket frames it
        before = source.get_state()
        text.insert(len(text), "x")
        update = source.get_update(before)
        assert len(update) < 0x80
        frame = bytes((0, 2, len(update))) + update
        out.write(len(frame).to_bytes(4, "little") + frame)
"""

DRIVER = r"""
import asyncio, sys

with open(sys.argv[1], "rb") as f:
    DATA = f.read()
READERS = int(sys.argv[2])  # 0: one reader without a socket (frames stay queued)


class Socket:  # takes every frame at once: what is left is the sender task's side
    def __init__(self, all_sent: "Counter") -> None:
        self.all_sent = all_sent

    async def send_bytes(self, data: bytes) -> None:
        self.all_sent.add()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


class Counter:  # frames sent by every socket; wakes the driver when a target is reached
    def __init__(self) -> None:
        self.sent = 0
        self.target = 0
        self.reached = asyncio.Event()

    def add(self) -> None:
        self.sent += 1
        if self.sent == self.target:
            self.reached.set()

    async def wait(self, target: int) -> None:
        self.target = target
        if self.sent < target:
            self.reached.clear()
            await self.reached.wait()


async def main() -> None:
    from collab.names import DocKey
    from collab.settings import Settings
    from collab.store.memory import MemoryStore
    try:
        from collab.sync.peer import Peer
        from collab.sync.registry import RoomRegistry
    except ImportError:  # before the redesign (issue 7)
        from collab.peer import Peer  # type: ignore[no-redef]
        from collab.rooms import RoomRegistry  # type: ignore[no-redef]
    registry = RoomRegistry(MemoryStore(), Settings(store="memory://"))
    live = await registry.acquire(DocKey("r", "d"))
    writer = Peer(None, max_queue_bytes=1 << 30, send_timeout=1.0)
    await live.join(writer)
    all_sent = Counter()
    sockets = [Socket(all_sent) for _ in range(READERS)]
    readers = [Peer(s, max_queue_bytes=1 << 30, send_timeout=1.0) for s in sockets]
    if not readers:
        readers.append(Peer(None, max_queue_bytes=1 << 30, send_timeout=1.0))
    senders = [asyncio.create_task(p.run_sender()) for p in readers if sockets]
    for reader in readers:
        await live.join(reader)
    frames = []
    pos = 0
    while pos < len(DATA):
        size = int.from_bytes(DATA[pos : pos + 4], "little")
        frames.append(DATA[pos + 4 : pos + 4 + size])
        pos += 4 + size
    if sockets:
        await all_sent.wait(READERS)  # each one's SyncStep1 from join
    for n, frame in enumerate(frames, start=2):
        await live.handle(writer, frame)
        await live.flush()
        if sockets:
            await all_sent.wait(n * READERS)
    if not sockets:
        assert len(readers[0]._queue) == len(frames) + 1
    for reader in readers:
        reader.close(1000)
    await asyncio.gather(*senders)

if sys.argv[3] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


def count(
    pythonpath: Path, n: int, seed: int, readers: int, loop: str = "asyncio", traced: bool = True
) -> int:
    """Instructions of one driver run over ``n`` frames (``traced=False``: run it untraced)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        driver = Path(tmp) / "driver.py"
        driver.write_text(DRIVER)
        frames = Path(tmp) / "frames"
        make = Path(tmp) / "frames.py"
        make.write_text(FRAMES)
        subprocess.run([sys.executable, str(make), str(n), str(frames)], cwd=tmp, check=True)
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        result = subprocess.run(
            [
                *(valgrind if traced else []),
                sys.executable,
                str(driver),
                str(frames),
                str(readers),
                loop,
            ],
            cwd=tmp,
            env={
                "PYTHONPATH": str(pythonpath),
                "PATH": "/usr/bin:/bin",
                "PYTHONHASHSEED": str(seed),
            },
            capture_output=True,
            text=True,
            check=True,
        )
    if not traced:
        return 0
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(result.stderr[-2000:])
    return int(found.group(1))


def per_update(
    pythonpath: Path, n1: int, n2: int, readers: int = 0, loop: str = "asyncio", seeds: int = 3
) -> float:
    """The median over ``seeds`` hash seeds (they agree within a few dozen instructions once
    the bytecode is cached: see ``measure``)."""
    runs = sorted(
        (count(pythonpath, n2, seed, readers, loop) - count(pythonpath, n1, seed, readers, loop))
        / (n2 - n1)
        for seed in range(1, seeds + 1)
    )
    return runs[len(runs) // 2]


def measure(pythonpath: Path, args: argparse.Namespace) -> dict[str, float]:
    """The figures for one tree: per update; with --fanout also per update to FANOUT sockets
    and per delivery (the difference between FANOUT sockets and one, per extra socket).

    One untraced run first writes the tree's bytecode cache: otherwise the first traced run
    compiles every module it imports, or every one edited since, and its count is off by
    that (a module is worth thousands of instructions per update over N2 - N1 frames).
    """
    count(pythonpath, 2, 0, 1, args.loop, traced=False)
    figures = {"update": per_update(pythonpath, args.n1, args.n2, loop=args.loop, seeds=args.seeds)}
    if args.fanout:
        one = per_update(pythonpath, args.n1, args.n2, readers=1, loop=args.loop, seeds=args.seeds)
        many = per_update(
            pythonpath, args.n1, args.n2, readers=args.fanout, loop=args.loop, seeds=args.seeds
        )
        figures[f"update to {args.fanout} sockets"] = many
        figures["delivery"] = (many - one) / (args.fanout - 1)
    return figures


def show(name: str, figures: dict[str, float]) -> None:
    for what, value in figures.items():
        print(f"{name}: {value:,.0f} instructions per {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git ref to compare with")
    parser.add_argument("--n1", type=int, default=200)
    parser.add_argument("--n2", type=int, default=1200)
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="hash seeds, the median taken (1: a third of the time, within a few dozen)",
    )
    parser.add_argument(
        "--fanout",
        type=int,
        default=0,
        metavar="K",
        help="also relay each update to K sockets (K >= 2) through their sender tasks",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop (collab serve runs on uvloop when it is installed: uvicorn's auto)",
    )
    args = parser.parse_args()
    if args.fanout == 1 or args.fanout < 0:
        parser.error("--fanout needs at least 2 sockets")
    here = measure(REPO, args)
    show("collab (this checkout)", here)
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "baseline"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(REPO),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(tree),
                    args.baseline,
                ],
                check=True,
            )
            try:
                base = measure(tree, args)
            finally:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
        show(f"collab@{args.baseline}", base)
        for what, value in here.items():
            print(f"ratio per {what}: {value / base[what]:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
