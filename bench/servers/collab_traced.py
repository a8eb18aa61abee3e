"""collab's server with tracemalloc on, for bench/memory.py: each SIGUSR1 writes a snapshot.

    COLLAB_TRACE_DIR=DIR python collab_traced.py serve ...   (the arguments of ``python -m collab``)

On SIGUSR1 (after a full collection) it writes DIR/snap-N.pickle (a tracemalloc snapshot),
DIR/types-N.json (live gc-tracked objects per type) and then DIR/done-N, N counting from 1.
Tracing slows the server and inflates its RSS: read allocations from it, not RSS.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = int(os.environ.get("COLLAB_TRACE_FRAMES", "12"))
taken = 0


def _dump(signum: int, frame: FrameType | None) -> None:
    global taken
    taken += 1
    out = Path(os.environ["COLLAB_TRACE_DIR"])
    gc.collect()
    tracemalloc.take_snapshot().dump(str(out / f"snap-{taken}.pickle"))
    counts = collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects()
    )
    (out / f"types-{taken}.json").write_text(json.dumps(counts))
    (out / f"done-{taken}").write_text("")


def main() -> None:
    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, _dump)
    from collab.cli import main as collab_main

    sys.argv = ["collab", *sys.argv[1:]]
    collab_main()


if __name__ == "__main__":
    main()
