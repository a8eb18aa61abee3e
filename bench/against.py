"""collab of one run against collab of another run: e.g. today's build against the performance
issue's committed full run, which later issues promise not to regress from.

    /work/main/.venv/bin/python bench/against.py NEW.json COMMITTED.json

NEW and COMMITTED are run summaries (bench/results/<date>.json). The table is the one
``run.py --baseline`` prints (bench/compare.py), over the rows both runs measured for collab
(deflate mode, workload, point, metric); everything else in either run is left out. Unlike
``--baseline`` the two builds were not interleaved: they were measured in two sittings, so
read a ratio with both runs' spreads, and prefer ``--baseline`` when the old build can still
be run. Writes bench/results/<new>-against-<committed>.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare

RESULTS = Path(__file__).resolve().parent / "results"


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["deflate"], row["workload"], row["point"], row["metric"])


def combine(new: dict[str, Any], old: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One summary holding collab of ``new`` and, renamed, collab of ``old``, over the rows
    both measured; and the old run's name in it."""
    name = f"collab@{old['date']}"
    ours = [r for r in new["results"] if r["server"] == "collab"]
    theirs = [r for r in old["results"] if r["server"] == "collab"]
    both = {_key(r) for r in ours} & {_key(r) for r in theirs}
    workloads = [w for w in new["workloads"] if w in old["workloads"]]
    results = [r for r in ours if _key(r) in both and r["workload"] in workloads]
    results += [
        {**r, "server": name} for r in theirs if _key(r) in both and r["workload"] in workloads
    ]
    return {**new, "servers": ["collab", name], "workloads": workloads, "results": results}, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path, help="the run to judge (a summary JSON)")
    parser.add_argument("committed", type=Path, help="the run it is held to (a summary JSON)")
    args = parser.parse_args(argv)
    new, old = (json.loads(p.read_text()) for p in (args.new, args.committed))
    summary, name = combine(new, old)
    if not summary["results"]:
        print("bench: the two runs share no measurement of collab", file=sys.stderr)
        return 2
    text = compare.render(compare.rows(summary, "collab", name), "collab", name)
    text += (
        f"\n\nNot interleaved: collab of {new['date']} (code {new['machine'].get('commit')})"
        f" against collab of {old['date']} (code {old['machine'].get('commit')}),"
        " measured in two sittings.\n"
    )
    out = RESULTS / f"{new['date']}-against-{old['date']}.md"
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
