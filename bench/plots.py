"""Scaling plots (PNG, matplotlib) of a run's summary: every server beside the anchors.

One figure per deflate mode for each scaling question of issue 11:

- ``clients-<mode>.png``: p99 and server CPU per 1,000 delivered updates against clients per
  room (the latency workload's points, one column per room count);
- ``sockets-<mode>.png``: server RSS against idle synced sockets with presence (the sockets
  workload), with the 400 MB target at 10,000;
- ``docsize-<mode>.png``: restart -> full content and fill rate against document size (the
  docsize workload);
- ``throughput-<mode>.png``: p99 against the offered edit rate of one room of 10 (the
  throughput workload's steps), with the 100 ms bound.

Markers are medians over the repetitions, bars their min-max; a hollow marker is a point where
the load generator saturated (measured, not comparable). A point with lost deliveries has an
infinite p99 and is left out of the p99 panels. A figure without data is not written.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatter, NullFormatter
from report import _rank

COLORS = {
    "collab": "#000000",
    "node-relay": "#1f77b4",
    "uvicorn-relay": "#2ca02c",
    "y-websocket": "#ff7f0e",
    "hocuspocus": "#d62728",
    "pycrdt-websocket": "#9467bd",
}
RSS_LIMIT_MB = 400.0
P99_LIMIT_MS = 100.0
NOTE = "median of the repetitions, bars: min-max; hollow: load generator saturated"


@dataclass(frozen=True)
class Point:
    x: float
    y: float  # the median
    low: float
    high: float
    saturated: bool


Series = dict[str, list[Point]]  # server -> its points, by x


def series(
    summary: dict[str, Any],
    workload: str,
    metric: str,
    deflate: bool,
    x_of: Callable[[str], float | None],
    scale: float = 1.0,
) -> Series:
    """The finite medians of ``metric`` per server, at x = ``x_of(point)`` (None: not in it)."""
    out: Series = {}
    for row in summary["results"]:
        if (row["workload"], row["metric"], row["deflate"]) != (workload, metric, deflate):
            continue
        x = x_of(row["point"])
        y = row["median"]
        if x is None or y is None or not math.isfinite(y):
            continue
        low = row["min"] if row["min"] is not None and math.isfinite(row["min"]) else y
        high = row["max"] if row["max"] is not None and math.isfinite(row["max"]) else y
        point = Point(x, y * scale, low * scale, high * scale, bool(row["saturated"]))
        out.setdefault(row["server"], []).append(point)
    return {
        server: sorted(points, key=lambda p: p.x)
        for server, points in sorted(out.items(), key=lambda item: _rank(item[0]))
    }


def clients_of(rooms: int) -> Callable[[str], float | None]:
    """x of a latency point "<rooms>x<clients>": its clients per room, for one room count."""

    def x_of(point: str) -> float | None:
        m = re.fullmatch(r"(\d+)x(\d+)", point)
        return float(m[2]) if m and int(m[1]) == rooms else None

    return x_of


def number(point: str) -> float | None:
    """x of a point that is a count ("10000")."""
    return float(point) if point.isdigit() else None


def megabytes(point: str) -> float | None:
    """x of a docsize point ("16MB")."""
    m = re.fullmatch(r"(\d+)MB", point)
    return float(m[1]) if m else None


def offered_rate(point: str) -> float | None:
    """x of a throughput step ("1414/s"; a superseded step is not one)."""
    m = re.fullmatch(r"(\d+)/s", point)
    return float(m[1]) if m else None


def room_counts(summary: dict[str, Any], deflate: bool) -> list[int]:
    """Room counts of the latency points with at least two client counts (a curve)."""
    found: dict[int, set[int]] = {}
    for row in summary["results"]:
        m = re.fullmatch(r"(\d+)x(\d+)", row["point"])
        if row["workload"] == "latency" and row["deflate"] == deflate and m:
            found.setdefault(int(m[1]), set()).add(int(m[2]))
    return sorted(rooms for rooms, clients in found.items() if len(clients) >= 2)


def _draw(ax: Axes, data: Series) -> None:
    for server, points in data.items():
        color = COLORS.get(server, "#7f7f7f")
        style = "-" if server in COLORS else "--"
        width = 2.4 if server == "collab" else 1.3
        xs = [p.x for p in points]
        ys = [p.y for p in points]
        ax.plot(xs, ys, style, color=color, linewidth=width, label=server)
        ax.errorbar(
            xs,
            ys,
            yerr=[[p.y - p.low for p in points], [p.high - p.y for p in points]],
            fmt="none",
            ecolor=color,
            elinewidth=0.8,
            capsize=2,
        )
        for p in points:
            ax.plot(
                p.x,
                p.y,
                "o",
                color=color,
                markerfacecolor="none" if p.saturated else color,
                markersize=5,
            )
    ax.grid(True, which="both", alpha=0.3)


def _log(ax: Axes, axis: str, data: Series, at_points: bool = False) -> None:
    """A log scale on ``axis`` ("x" or "y") labelled in plain numbers (20, 50, not 2x10^1);
    ``at_points``: the x ticks at the x values of ``data``. Linear where a value is <= 0."""
    if not data or not _positive(data, axis):
        return
    which = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if at_points:
        which.set_major_locator(FixedLocator(sorted({p.x for ps in data.values() for p in ps})))
        which.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
        which.set_minor_formatter(NullFormatter())
    else:  # labels on the minor ticks too where the axis spans less than a decade or so
        which.set_major_formatter(LogFormatter())
        which.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def _positive(data: Series, axis: str = "y") -> bool:
    if axis == "x":
        return all(p.x > 0 for points in data.values() for p in points)
    return all(p.y > 0 and p.low > 0 for points in data.values() for p in points)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _mode(deflate: bool) -> str:
    return "on" if deflate else "off"


def _title(fig: Any, text: str, deflate: bool) -> None:
    mode = "permessage-deflate accepted" if deflate else "permessage-deflate off"
    fig.suptitle(f"{text} ({mode})\n{NOTE}", fontsize=10)


def plot_clients(summary: dict[str, Any], deflate: bool, out: Path) -> Path | None:
    rooms = room_counts(summary, deflate)
    if not rooms:
        return None
    fig, axes = plt.subplots(
        2, len(rooms), figsize=(5.5 * len(rooms), 8), squeeze=False, layout="constrained"
    )
    for col, r in enumerate(rooms):
        p99 = series(summary, "latency", "p99_ms", deflate, clients_of(r))
        cpu = series(summary, "latency", "cpu_s_per_1k", deflate, clients_of(r))
        top, bottom = axes[0][col], axes[1][col]
        _draw(top, p99)
        _draw(bottom, cpu)
        for ax, data in ((top, p99), (bottom, cpu)):
            _log(ax, "x", data, at_points=True)
            _log(ax, "y", data)
            ax.set_xlabel("clients per room")
        top.set_title(f"{r} room{'s' if r > 1 else ''}: p99 delivery latency")
        top.set_ylabel("p99 ms")
        bottom.set_title(f"{r} room{'s' if r > 1 else ''}: server CPU per delivered update")
        bottom.set_ylabel("CPU-s per 1,000 deliveries")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8)
    _title(fig, "Latency workload: one writer per room at 10 edits/s", deflate)
    return _save(fig, out / f"clients-{_mode(deflate)}.png")


def plot_sockets(summary: dict[str, Any], deflate: bool, out: Path) -> Path | None:
    rss = series(summary, "sockets", "rss_mb", deflate, number)
    if not rss:
        return None
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    _draw(ax, rss)
    top = max(p.x for points in rss.values() for p in points)
    if top >= 10_000:
        ax.axhline(RSS_LIMIT_MB, color="#000000", linestyle=":", linewidth=1)
        ax.annotate(
            "target at 10,000: < 400 MB",
            (0.01, RSS_LIMIT_MB),
            xycoords=("axes fraction", "data"),
            fontsize=8,
            va="bottom",
        )
    ax.set_xlabel("idle synced sockets with presence")
    ax.set_ylabel("server RSS, MB")
    ax.legend(fontsize=8)
    _title(fig, "Sockets workload: server RSS", deflate)
    return _save(fig, out / f"sockets-{_mode(deflate)}.png")


def plot_docsize(summary: dict[str, Any], deflate: bool, out: Path) -> Path | None:
    load = series(summary, "docsize", "load_ms", deflate, megabytes)
    fill = series(summary, "docsize", "fill_mb_per_s", deflate, megabytes)
    if not load and not fill:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    _draw(left, load)
    _draw(right, fill)
    for ax, data in ((left, load), (right, fill)):
        _log(ax, "x", data, at_points=True)
        ax.set_xlabel("document size, MB")
    _log(left, "y", load)
    left.set_title("restart -> full content")
    left.set_ylabel("ms")
    right.set_title("fill rate (one writer, one watcher)")
    right.set_ylabel("MB/s")
    (left if load else right).legend(fontsize=8)
    _title(fig, "Docsize workload", deflate)
    return _save(fig, out / f"docsize-{_mode(deflate)}.png")


def plot_throughput(summary: dict[str, Any], deflate: bool, out: Path) -> Path | None:
    p99 = series(summary, "throughput", "step_p99_ms", deflate, offered_rate)
    if not p99:
        return None
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    _draw(ax, p99)
    ax.axhline(P99_LIMIT_MS, color="#000000", linestyle=":", linewidth=1)
    _log(ax, "x", p99)
    _log(ax, "y", p99)
    ax.set_xlabel("offered edits/s into one room")
    ax.set_ylabel("p99 ms")
    ax.legend(fontsize=8)
    clients = summary.get("plan", {}).get("tp_clients", 10)
    _title(fig, f"Throughput workload: one room of {clients}, every client writing", deflate)
    return _save(fig, out / f"throughput-{_mode(deflate)}.png")


PLOTS = (plot_clients, plot_sockets, plot_docsize, plot_throughput)


def write_all(summary: dict[str, Any], out: Path) -> list[Path]:
    """Every plot the summary has data for, into ``out``; the files written."""
    written = []
    for deflate in (False, True):
        for plot in PLOTS:
            path = plot(summary, deflate, out)
            if path is not None:
                written.append(path)
    return written


def markdown(files: list[Path], base: Path) -> str:
    """Image links to ``files`` relative to ``base`` (the directory of the markdown)."""
    if not files:
        return ""
    lines = ["", "### Scaling plots"]
    for path in files:
        rel = Path(os.path.relpath(path, base))
        lines += ["", f"![{path.stem}]({rel.as_posix()})"]
    return "\n".join(lines) + "\n"
