"""Markdown tables (with ratios vs the uvicorn relay and vs Hocuspocus) from a run's summary."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# A section of a workload rendered elsewhere (chat.render): (index, deflate, summary) -> lines.
Section = Callable[["Index", bool, dict[str, Any]], list[str]]

START = "<!-- results:start (written by bench/run.py; edits here are replaced) -->"
END = "<!-- results:end -->"
SERVER_ORDER = (
    "collab",
    "node-relay",
    "uvicorn-relay",
    "y-websocket",
    "hocuspocus",
    "pycrdt-websocket",
)


def one_line(rows: list[dict[str, Any]]) -> str:
    """A short progress line for one run_one result."""
    shown = []
    for row in rows:
        if row["metric"] in {
            "p99_ms",
            "kb_per_conn",
            "kb_per_room",
            "ingest_per_s",
            "full_ms",
            "persisted",
            "frames_per_change",
            "errors",
            "max_rate",
            "rss_mb",
            "fill_mb_per_s",
            "load_ms",
        }:
            mark = "*" if row["saturated"] else ""
            shown.append(f"{row['point']}:{row['metric']}={num(row['value'])}{mark}")
    return " ".join(shown)


def num(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _rank(server: str) -> tuple[int, bool, str]:
    """SERVER_ORDER, an earlier build (``collab@<sha>``) right after its server, others last."""
    name, at, _ = server.partition("@")
    known = SERVER_ORDER.index(name) if name in SERVER_ORDER else len(SERVER_ORDER)
    return known, bool(at), server


class Index:
    def __init__(self, summary: dict[str, Any]) -> None:
        self.rows = {
            (r["workload"], r["point"], r["metric"], r["server"], r["deflate"]): r
            for r in summary["results"]
        }
        self.servers = sorted(summary["servers"], key=_rank)

    def get(self, *key: Any) -> dict[str, Any] | None:
        return self.rows.get(key)

    def points(self, workload: str, metric: str, deflate: bool) -> list[str]:
        seen: list[str] = []
        for w, p, m, _, d in self.rows:
            if (w, m, d) == (workload, metric, deflate) and p not in seen:
                seen.append(p)
        return seen


def cell(row: dict[str, Any] | None, scale: float = 1.0) -> str:
    if row is None or row["median"] is None:
        return "-"
    text = num(row["median"] * scale)
    if row["reps"] > 1 and row["min"] is not None:
        text += f" ({num(row['min'] * scale)}-{num(row['max'] * scale)})"
    return text + (" *" if row["saturated"] else "")


def _ratio(row: dict[str, Any] | None, base: dict[str, Any] | None) -> str:
    """row / base, blank when either is missing, saturated or zero."""
    if row is None or base is None or row["saturated"] or base["saturated"]:
        return ""
    a, b = row["median"], base["median"]
    if a is None or b is None or b == 0 or math.isinf(b):
        return ""
    return "inf" if math.isinf(a) else f"{a / b:.2f}x"


def table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def render(
    summary: dict[str, Any],
    sections: Sequence[Section] = (),
    closing: Sequence[Section] = (),
    preface: str = "",
) -> str:
    """Every table of the run; ``sections`` go into each deflate mode before the targets,
    ``closing`` after them; ``preface`` (markdown: the plots) before the first mode."""
    ix = Index(summary)
    m = summary["machine"]
    out = [
        f"Run {summary['date']}: {summary['reps']} repetitions, {summary['elapsed_s'] / 60:.1f} "
        f"min, commit {m['commit']}, {m['platform']}, Python {m['python']}, node {m['node']}; "
        f"{m['pinning']}."
        + (" collab ran with uncommitted changes." if m.get("dirty") else "")
        + (
            f" Measured in {len(summary['parts'])} parts on the same code of collab"
            f" ({', '.join(summary['parts'])}; `run.py --merge`)."
            if summary.get("parts")
            else ""
        ),
        "",
        "Each cell: median of the repetitions (min-max). `*` = the load generator used more than "
        "75% of a core during that point: measured, not compared (ratio left blank). Ratios are "
        "this server's median over the uvicorn relay's (`/uv`) or Hocuspocus's (`/hp`).",
    ]
    if summary.get("baseline"):
        b = summary["baseline"]
        out += [
            "",
            f"`{b['name']}` is collab at `{b['ref']}` ({b['commit']}), checked out in a throwaway "
            "git worktree and started exactly like `collab`, interleaved with it.",
        ]
    if summary["failures"]:
        out += ["", "Failures:", ""] + [_failure(f) for f in summary["failures"]]
    if preface:
        out += [preface.rstrip("\n")]
    for deflate in (False, True):
        if not any(k[4] == deflate for k in ix.rows):
            continue
        mode = "permessage-deflate accepted" if deflate else "permessage-deflate off"
        out += ["", f"### {mode}"]
        out += _latency(ix, deflate) + _memory(ix, deflate) + _cold(ix, deflate)
        out += _awareness(ix, deflate)
        for section in sections:
            out += section(ix, deflate, summary)
        out += _targets(ix, deflate)
        for section in closing:
            out += section(ix, deflate, summary)
    return "\n".join(out) + "\n"


def _latency(ix: Index, deflate: bool) -> list[str]:
    points = ix.points("latency", "p99_ms", deflate)
    if not points:
        return []
    body = []
    for point in points:
        uv = ix.get("latency", point, "p99_ms", "uvicorn-relay", deflate)
        hp_cpu = ix.get("latency", point, "cpu_s_per_1k", "hocuspocus", deflate)
        for server in ix.servers:
            p99 = ix.get("latency", point, "p99_ms", server, deflate)
            if p99 is None:
                continue
            cpu = ix.get("latency", point, "cpu_s_per_1k", server, deflate)
            body.append(
                [
                    point,
                    server,
                    cell(ix.get("latency", point, "p50_ms", server, deflate)),
                    cell(p99),
                    _ratio(p99, uv),
                    cell(ix.get("latency", point, "lost", server, deflate)),
                    cell(ix.get("latency", point, "deliveries_per_s", server, deflate)),
                    cell(ix.get("latency", point, "server_cores", server, deflate)),
                    cell(cpu),
                    _ratio(cpu, hp_cpu),
                ]
            )
    header = [
        "rooms x clients",
        "server",
        "p50 ms",
        "p99 ms",
        "p99 /uv",
        "lost",
        "deliveries/s",
        "server cores",
        "CPU-s per 1k deliveries",
        "CPU /hp",
    ]
    return ["", "#### Latency (one writer per room at 10 edits/s)", "", *table(header, body)]


def _memory(ix: Index, deflate: bool) -> list[str]:
    body = []
    for server in ix.servers:
        conn = ix.get("connections", "idle", "kb_per_conn", server, deflate)
        if conn is None:
            continue
        room = ix.get("connections", "idle", "kb_per_room", server, deflate)
        body.append(
            [
                server,
                cell(conn),
                _ratio(
                    conn, ix.get("connections", "idle", "kb_per_conn", "uvicorn-relay", deflate)
                ),
                cell(room),
                _ratio(room, ix.get("connections", "idle", "kb_per_room", "hocuspocus", deflate)),
                cell(ix.get("connections", "idle", "kb_per_client_10_per_room", server, deflate)),
                cell(ix.get("connections", "idle", "kb_per_client_1_per_room", server, deflate)),
            ]
        )
    if not body:
        return []
    header = [
        "server",
        "KB / connection",
        "/uv",
        "KB / room",
        "/hp",
        "KB / client (10 per room)",
        "KB / client (1 per room)",
    ]
    return ["", "#### Memory of idle synced clients (server RSS slopes)", "", *table(header, body)]


def _cold(ix: Index, deflate: bool) -> list[str]:
    body = []
    for point in ix.points("cold", "ingest_per_s", deflate):
        hp_full = ix.get("cold", point, "full_ms", "hocuspocus", deflate)
        for server in ix.servers:
            ingest = ix.get("cold", point, "ingest_per_s", server, deflate)
            if ingest is None:
                continue
            full = ix.get("cold", point, "full_ms", server, deflate)
            body.append(
                [
                    point,
                    server,
                    cell(ingest),
                    cell(ix.get("cold", point, "ingest_complete", server, deflate), 100),
                    cell(ix.get("cold", point, "persisted", server, deflate), 100),
                    cell(ix.get("cold", point, "synced_ms", server, deflate)),
                    cell(full),
                    _ratio(full, hp_full),
                ]
            )
    if not body:
        return []
    header = [
        "updates",
        "server",
        "ingest updates/s",
        "ingest complete %",
        "persisted %",
        "restart -> synced ms",
        "restart -> full content ms",
        "full /hp",
    ]
    return ["", "#### Ingest, then cold sync after a clean restart", "", *table(header, body)]


def _awareness(ix: Index, deflate: bool) -> list[str]:
    body = []
    for point in ix.points("awareness", "frames_per_change", deflate):
        for server in ix.servers:
            row = ix.get("awareness", point, "frames_per_change", server, deflate)
            if row is not None:
                body.append([point, server, cell(row), str(row.get("ideal", ""))])
    if not body:
        return []
    header = ["room", "server", "frames sent per awareness change", "ideal (clients - 1)"]
    return ["", "#### Awareness fan-out", "", *table(header, body)]


def _targets(ix: Index, deflate: bool) -> list[str]:
    """The issue's targets for collab, each met / missed / not measurable in this run."""

    def check(row: dict[str, Any] | None, base: dict[str, Any] | None, limit: float) -> str:
        r = _ratio(row, base)
        if not r:
            return "n/a"
        if r == "inf":
            return "missed (inf)"
        return ("met" if float(r[:-1]) <= limit else "missed") + f" ({r})"

    def get(workload: str, point: str, metric: str, server: str) -> dict[str, Any] | None:
        return ix.get(workload, point, metric, server, deflate)

    body = []
    for point in ix.points("latency", "p99_ms", deflate):
        body.append(
            [
                f"p99 at {point} <= 1.2x uvicorn relay",
                check(
                    get("latency", point, "p99_ms", "collab"),
                    get("latency", point, "p99_ms", "uvicorn-relay"),
                    1.2,
                ),
            ]
        )
        body.append(
            [
                f"CPU per delivered update at {point} <= Hocuspocus",
                check(
                    get("latency", point, "cpu_s_per_1k", "collab"),
                    get("latency", point, "cpu_s_per_1k", "hocuspocus"),
                    1.0,
                ),
            ]
        )
    body.append(
        [
            "KB per idle connection <= 1.2x uvicorn relay",
            check(
                get("connections", "idle", "kb_per_conn", "collab"),
                get("connections", "idle", "kb_per_conn", "uvicorn-relay"),
                1.2,
            ),
        ]
    )
    body.append(
        [
            "KB per room <= Hocuspocus",
            check(
                get("connections", "idle", "kb_per_room", "collab"),
                get("connections", "idle", "kb_per_room", "hocuspocus"),
                1.0,
            ),
        ]
    )
    for point in ix.points("cold", "full_ms", deflate):
        persisted = get("cold", point, "persisted", "collab")
        every = persisted is not None and persisted["min"] is not None and persisted["min"] >= 1.0
        verdict = check(
            get("cold", point, "full_ms", "collab"),
            get("cold", point, "full_ms", "hocuspocus"),
            1.0,
        )
        if verdict.startswith("met") and not every:
            verdict = "missed (not every update persisted)"
        body.append([f"cold sync of {point} <= Hocuspocus, every update persisted", verdict])
    if not body:
        return []
    return ["", "#### collab against the targets", "", *table(["target", "verdict"], body)]


def replace_in_readme(readme: Path, tables: str) -> None:
    text = readme.read_text("utf-8") if readme.exists() else ""
    block = f"{START}\n\n{tables}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    readme.write_text(text, "utf-8")


def _failure(f: dict[str, Any]) -> str:
    """One line of the failures list; an interruption names no step."""
    if "rep" not in f:
        return f"- the run: `{f['error'][:200]}`"
    return (
        f"- rep {f['rep'] + 1} {f['workload']} {f['server']} deflate={f['deflate']}: "
        f"`{f['error'][:200]}`"
    )
