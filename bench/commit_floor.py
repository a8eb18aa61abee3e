"""The CPU floor of a durable commit per update on this machine (issue 11).

collab commits every update before relaying it (SQLite, ``synchronous=FULL``: one fdatasync of
the WAL per group commit), which Hocuspocus and y-websocket do not (debounced stores, no fsync
on the update path). At the latency workload's low points the commits do not group: at 20 x 2
an update arrives every 5 ms, at 1 x 2 every 100 ms, and each is its own transaction. This
measures, in one process on uvloop, what such a paced operation costs in CPU (the process's
user + system time, which the kernel keeps to the nanosecond in its total), at each spacing:

- ``wake``: nothing but the event loop waking after the pause (every server pays it);
- ``fdatasync``: a 40-byte append to a file and its fdatasync, on the loop's thread: the least
  any server that makes each update durable pays;
- ``sqlite``: one SQLite transaction as collab's append makes it (head read, row insert, head
  write, ``COMMIT`` with ``synchronous=FULL`` in WAL mode), on the loop's thread;
- ``store``: ``collab.store.sqlite.SQLiteStore.append``, collab's own commit path (its writer
  thread, hand-over and answer included).

Each figure is the median over ``--reps`` runs of ``--count`` operations, minus nothing: read
``fdatasync - wake`` as the durable write's own cost. Compare with the anchors' whole CPU per
update at the same point in bench/README.md (CPU-s per 1,000 deliveries, times the
deliveries per update). Writes ``bench/results/commit-floor-<date>.json``; a run takes about
a minute and must run alone on the machine (the files go to a temporary directory on the disk
the server's database would use: ``--dir``, default ``bench/results/raw``).

    python bench/commit_floor.py [--count 400] [--reps 5] [--spacing-ms 5,100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from collab.db.migrate import migrate_with_backup  # noqa: E402
from collab.names import DocKey  # noqa: E402
from collab.store.sqlite import SQLiteStore  # noqa: E402

KINDS = ("wake", "fdatasync", "sqlite", "store")
DOCS = 20  # the updates go round 20 docs, as at 20 x 2
MAX_COUNT = 2_000


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sqlite(directory: Path) -> Callable[[int], None]:
    conn = sqlite3.connect(directory / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE heads(name TEXT PRIMARY KEY, head INTEGER NOT NULL)")
    conn.execute(
        "CREATE TABLE updates(name TEXT, seq INTEGER, data BLOB, PRIMARY KEY(name, seq))"
        " WITHOUT ROWID"
    )
    conn.executemany("INSERT INTO heads VALUES (?, 0)", [(f"d{i}",) for i in range(DOCS)])

    def commit(i: int) -> None:
        name = f"d{i % DOCS}"
        conn.execute("BEGIN IMMEDIATE")
        (head,) = conn.execute("SELECT head FROM heads WHERE name=?", (name,)).fetchone()
        conn.execute("INSERT INTO updates VALUES (?, ?, ?)", (name, head + 1, b"u" * 40))
        conn.execute("UPDATE heads SET head=? WHERE name=?", (head + 1, name))
        conn.execute("COMMIT")

    return commit


async def _measure(kind: str, spacing: float, count: int, directory: Path) -> float:
    """CPU microseconds per paced operation of ``kind``."""
    step: Callable[[int], Awaitable[None] | None]
    store: SQLiteStore | None = None
    fd = -1
    if kind == "wake":
        step = lambda i: None  # noqa: E731
    elif kind == "fdatasync":
        fd = os.open(directory / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def step(i: int) -> None:
            os.write(fd, b"u" * 40)
            os.fdatasync(fd)

    elif kind == "sqlite":
        step = _sqlite(directory)
    else:
        path = directory / "collab.db"
        migrate_with_backup(path)
        store = SQLiteStore(path)
        await store.open()
        keys = [DocKey("room", f"d{i}") for i in range(DOCS)]
        for key in keys:
            await store.append(key, [b"first"])
        opened = store

        def step(i: int) -> Awaitable[None] | None:
            return opened.append(keys[i % DOCS], [b"u" * 40])  # type: ignore[return-value]

    try:
        for i in range(5):  # warm: first pages, first statements
            done = step(i)
            if done is not None:
                await done
        before = _cpu()
        for i in range(count):
            await asyncio.sleep(spacing)
            done = step(i)
            if done is not None:
                await done
        return (_cpu() - before) / count * 1e6
    finally:
        if fd >= 0:
            os.close(fd)
        if store is not None:
            await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help=f"operations a run (<= {MAX_COUNT})")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--spacing-ms", default="5,100", help="pauses between operations")
    parser.add_argument("--dir", type=Path, default=BENCH / "results" / "raw")
    args = parser.parse_args()
    if not 0 < args.count <= MAX_COUNT:
        parser.error(f"--count must be in (0, {MAX_COUNT}]")
    spacings = [float(ms) / 1000 for ms in args.spacing_ms.split(",")]
    args.dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict[str, list[float]]] = {}
    for spacing in spacings:
        label = f"{spacing * 1000:g} ms"
        runs = figures[label] = {kind: [] for kind in KINDS}
        for _ in range(args.reps):
            for kind in KINDS:  # interleaved, so a drift of the machine hits every kind
                with tempfile.TemporaryDirectory(dir=args.dir) as directory:
                    us = uvloop.run(_measure(kind, spacing, args.count, Path(directory)))
                runs[kind].append(us)
        medians = {kind: statistics.median(values) for kind, values in runs.items()}
        print(
            f"spacing {label}: CPU us per operation (median of {args.reps}): "
            + ", ".join(f"{kind} {medians[kind]:.0f}" for kind in KINDS)
            + f"; fdatasync - wake {medians['fdatasync'] - medians['wake']:.0f},"
            f" store - wake {medians['store'] - medians['wake']:.0f}"
        )
    stamp = time.strftime("%Y-%m-%dT%H%M%S", time.gmtime())
    out = BENCH / "results" / f"commit-floor-{stamp}.json"
    out.write_text(json.dumps({"count": args.count, "runs": figures}, indent=1) + "\n")
    print(f"wrote {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
