"""Search benchmark (issue 13, Done means 4): load a fresh server, then time queries and lag.

    /work/main/.venv/bin/python bench/search.py            # 100,000 messages, 1,000 docs
    /work/main/.venv/bin/python bench/search.py --quick    # a smoke run: 2,000 and 20

1. A fresh ``collab serve`` (bench/procs.py's, with the per-user rates lifted) gets
   ``--messages`` chat messages over ``POST /rooms/{room}/messages`` (a mix of English words
   and Chinese, spread over ``--rooms`` rooms, ``--concurrency`` at a time) and ``--docs``
   Tiptap-shaped documents of ``--doc-kb`` KB each, written over the WebSocket and confirmed
   committed (the "saved" echo). Load rates are reported, and the wait until the index holds
   everything.
2. Query latency, end to end over HTTP, one query at a time, by class: a common word, a rare
   word, three CJK characters, a two-word phrase, a word in one room, a word matching nothing,
   and, reported apart (shorter than a trigram: the bounded scan), one and two CJK characters.
   p50/p99/max per class; the target is p99 < 50 ms for the indexed classes.
3. Index lag: a message posted (from its 201) and a doc edited (from its "saved" echo, i.e.
   committed) until the first search that finds the new word; the target is < 2 s.
4. ``collab search reindex`` under the running server, timed (a full rebuild).

Results: bench/results/search-<date>.json (``--quick``: bench/results/raw/), and a table on
stdout. Run it alone on the machine; the numbers of a shared machine are not results.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import BENCH, PYTHON, ROOT, SERVERS, Cores, ServerProcess

sys.path.insert(0, str(ROOT))

from pycrdt import Doc, XmlElement, XmlFragment, XmlText
from websockets.asyncio.client import connect

from collab.wire import framing

LIFTED = {
    "COLLAB_SEARCH_RATE": "1000000",
    "COLLAB_SEARCH_BURST": "1000000",
    "COLLAB_CHAT_WRITE_RATE": "1000000",
    "COLLAB_CHAT_WRITE_BURST": "1000000",
    "COLLAB_API_CREATE_RATE": "1000000",
    "COLLAB_API_CREATE_BURST": "1000000",
    "COLLAB_MAX_DOCS_PER_ROOM": "1000000",
    "COLLAB_LOG_LEVEL": "warning",
}
CLASSES = ("word", "rare", "cjk3", "phrase", "room", "none", "cjk1", "cjk2")
SHORT = ("cjk1", "cjk2")


class Corpus:
    """Deterministic text: English-like words and runs of common CJK characters."""

    def __init__(self, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = sorted(
            {
                "".join(self.rng.choice(letters) for _ in range(self.rng.randint(4, 9)))
                for _ in range(3000)
            }
        )
        self.cjk = [chr(0x4E00 + i) for i in self.rng.sample(range(0x5000), 1500)]

    def sentence(self, n: int) -> str:
        out = []
        for _ in range(n):
            if self.rng.random() < 0.3:
                out.append(
                    "".join(self.rng.choice(self.cjk) for _ in range(self.rng.randint(2, 6)))
                )
            else:
                out.append(self.rng.choice(self.words))
        return " ".join(out)

    def paragraphs(self, size: int) -> list[str]:
        out, total = [], 0
        while total < size:
            para = self.sentence(self.rng.randint(10, 30)) + "."
            out.append(para)
            total += len(para.encode())
        return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2) if ms else float("nan"),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


async def bounded(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await job(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def write_doc(ws_url: str, build: Callable[[Doc[Any]], None]) -> float:
    """Send a doc's update over a socket; return when the server has committed it."""
    doc: Doc[Any] = Doc()
    before = doc.get_state()
    build(doc)
    update = doc.get_update(before)
    async with connect(ws_url, max_size=None, open_timeout=30) as ws:
        await ws.send(framing.sync_update(update))
        await ws.send(framing.saved(1))
        async for message in ws:
            assert isinstance(message, bytes)
            if message[0] == framing.MSG_SAVED:
                return time.monotonic()
    raise RuntimeError("the socket closed before the saved echo")


def tiptap(paragraphs: list[str]) -> Callable[[Doc[Any]], None]:
    def build(doc: Doc[Any]) -> None:
        fragment = doc.get("default", type=XmlFragment)
        for para in paragraphs:
            fragment.children.append(XmlElement("paragraph", {}, [XmlText(para)]))

    return build


def index_counts(data: Path) -> tuple[int, int]:
    conn = sqlite3.connect((data / "collab.db.search.db").resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = dict(
            conn.execute("SELECT kind, count(*) FROM entries WHERE NOT deleted GROUP BY kind")
        )
        return int(rows.get("chat", 0)), int(rows.get("doc", 0))
    finally:
        conn.close()


class Bench:
    def __init__(self, args: argparse.Namespace, server: ServerProcess, token: str) -> None:
        self.args = args
        self.server = server
        self.base = f"http://127.0.0.1:{server.port}/api/v1"
        self.token = token
        self.http = httpx.AsyncClient(
            base_url=self.base, headers={"authorization": f"Bearer {token}"}, timeout=60
        )
        self.corpus = Corpus()
        self.rooms = [f"room{i:03d}" for i in range(args.rooms)]
        self.seen: list[str] = []  # some of the loaded texts: phrases and CJK runs come from them

    def ws(self, room: str, doc: str) -> str:
        return f"ws://127.0.0.1:{self.server.port}/ws/{room}/{doc}?token={self.token}&collab=1"

    async def load(self) -> dict[str, Any]:
        for room in self.rooms:
            (await self.http.post("/rooms", json={"id": room})).raise_for_status()
        started = time.monotonic()

        async def post(i: int) -> None:
            text = self.corpus.sentence(self.corpus.rng.randint(4, 30))
            if i % 20 == 0:
                self.seen.append(text)
            body = {"text": text, "client_id": f"m{i}"}
            r = await self.http.post(
                f"/rooms/{self.rooms[i % len(self.rooms)]}/messages", json=body
            )
            r.raise_for_status()

        await bounded(self.args.messages, self.args.concurrency, post)
        posted = time.monotonic() - started
        started = time.monotonic()

        async def doc(i: int) -> None:
            paragraphs = self.corpus.paragraphs(self.args.doc_kb * 1024)
            self.seen.append(paragraphs[len(paragraphs) // 2])
            await write_doc(self.ws(self.rooms[i % len(self.rooms)], f"doc{i}"), tiptap(paragraphs))

        await bounded(self.args.docs, max(1, self.args.concurrency // 4), doc)
        written = time.monotonic() - started
        started = time.monotonic()
        # Polled: the index file is another process's.
        while index_counts(self.server.data) != (self.args.messages, self.args.docs):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return {
            "messages_per_s": round(self.args.messages / posted, 1),
            "docs_per_s": round(self.args.docs / written, 1),
            "index_caught_up_after_s": round(time.monotonic() - started, 2),
        }

    def _pieces(self) -> tuple[list[str], list[str]]:
        """Two-word phrases and three-character CJK runs that occur in the loaded text."""
        phrases, runs = [], []
        for text in self.seen:
            words = text.replace(".", "").split()
            phrases += [
                f'"{a} {b}"' for a, b in itertools.pairwise(words) if a.isascii() and b.isascii()
            ]
            runs += [w[:3] for w in words if not w.isascii() and len(w) >= 3]
        return phrases or ['"no phrase"'], runs or ["无此词"]

    def queries(self, n: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
        rng = random.Random(7)
        c = self.corpus
        common = c.words[: max(10, len(c.words) // 20)]
        phrases, runs = self._pieces()
        out: dict[str, list[tuple[str, dict[str, str]]]] = {k: [] for k in CLASSES}
        for _ in range(n):
            out["word"].append((rng.choice(common), {}))
            out["rare"].append((rng.choice(c.words), {}))
            out["cjk3"].append((rng.choice(runs), {}))
            out["phrase"].append((rng.choice(phrases), {}))
            out["room"].append((rng.choice(common), {"room": rng.choice(self.rooms)}))
            out["none"].append(("zqxjzqxj", {}))
            out["cjk1"].append((rng.choice(runs)[:1], {}))
            out["cjk2"].append((rng.choice(runs)[:2], {}))
        return out

    async def latency(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for kind, queries in self.queries(self.args.queries).items():
            times, found = [], 0
            for q, params in queries:
                started = time.monotonic()
                r = await self.http.get("/search", params={"q": q, **params})
                times.append(time.monotonic() - started)
                r.raise_for_status()
                found += bool(r.json()["items"])
            results[kind] = {**summary(times), "with_hits": found}
        return results

    async def until_found(self, q: str, since: float) -> float:
        while True:
            r = await self.http.get("/search", params={"q": q})
            r.raise_for_status()
            if r.json()["items"]:
                return time.monotonic() - since
            if time.monotonic() - since > 30:
                return float("inf")
            await asyncio.sleep(0.01)

    async def lag(self) -> dict[str, Any]:
        chat, docs = [], []
        for i in range(self.args.lag_samples):
            marker = f"lagmsg{i}zq"
            r = await self.http.post(
                f"/rooms/{self.rooms[0]}/messages",
                json={"text": f"{marker} now", "client_id": marker},
            )
            r.raise_for_status()
            chat.append(await self.until_found(marker, time.monotonic()))
            marker = f"lagdoc{i}zq"
            done = await write_doc(
                self.ws(self.rooms[i % len(self.rooms)], f"doc{i % max(1, self.args.docs)}"),
                tiptap([f"{marker} appended"]),
            )
            docs.append(await self.until_found(marker, done))
        return {"chat": summary(chat), "doc": summary(docs)}

    def reindex(self) -> dict[str, Any]:
        started = time.monotonic()
        out = subprocess.run(
            [
                PYTHON,
                "-m",
                "collab",
                "search",
                "reindex",
                "--store",
                f"sqlite:///{self.server.data / 'collab.db'}",
            ],
            cwd=BENCH,
            env=self.server_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return {
            "seconds": round(time.monotonic() - started, 1),
            "ok": out.returncode == 0,
            "output": out.stdout.strip(),
        }

    def server_env(self) -> dict[str, str]:
        from procs import server_env

        return server_env(self.server.spec)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke run at a small scale")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--docs", type=int, default=1_000)
    p.add_argument("--doc-kb", type=int, default=10)
    p.add_argument("--rooms", type=int, default=50)
    p.add_argument("--queries", type=int, default=200, help="per class")
    p.add_argument("--lag-samples", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--no-pin", action="store_true", help="do not pin the server to a core")
    args = p.parse_args(argv)
    if args.quick:
        args.messages, args.docs, args.rooms = 2_000, 20, 10
        args.queries, args.lag_samples = 30, 5
    return args


def table(result: dict[str, Any]) -> str:
    lines = ["| class | p50 ms | p99 ms | max ms | n | with hits |", "|---|---|---|---|---|---|"]
    for kind, row in result["latency"].items():
        label = f"{kind} (short: scan)" if kind in SHORT else kind
        lines.append(
            f"| {label} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} | {row['n']} |"
            f" {row['with_hits']} |"
        )
    for kind, row in result["lag"].items():
        lines.append(
            f"| lag: {kind} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} | {row['n']} | |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    from dataclasses import replace

    base = SERVERS["collab"]
    spec = replace(base, env={**(base.env or {}), **LIFTED})
    server = ServerProcess(spec, data, deflate=False, cores=Cores.split(not args.no_pin))
    server.start()
    bench = Bench(args, server, (spec.params or {})["token"])
    try:
        loaded = await bench.load()
        print(f"loaded: {loaded}", flush=True)
        latency = await bench.latency()
        lag = await bench.lag()
        rebuild = bench.reindex()
        rss = server.rss_bytes()
    finally:
        await bench.http.aclose()
        server.stop()
    return {
        "scale": {k: getattr(args, k) for k in ("messages", "docs", "doc_kb", "rooms", "queries")},
        "load": loaded,
        "latency": latency,
        "lag": lag,
        "reindex": rebuild,
        "server_rss_bytes": rss,
    }


def main(argv: list[str] | None = None) -> int:
    import platform
    import tempfile

    args = parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    with tempfile.TemporaryDirectory(prefix="collab-search-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
        result["files"] = {p.name: p.stat().st_size for p in Path(tmp).glob("collab.db*")}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    result["machine"] = {
        "commit": commit,
        "cpus": len(Cores.split(True).load or ()) + 1,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "quick": args.quick,
    }
    out_dir = BENCH / "results" / ("raw" if args.quick else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"search-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"reindex: {result['reindex']}")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
