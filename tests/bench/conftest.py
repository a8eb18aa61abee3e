"""bench/ is a directory of scripts, not a package: its modules import each other by their bare
names (``from procs import ...``, as bench/run.py runs them). The tests import them the same
way, with bench/ at the end of the path (after everything else: its names cannot shadow one)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))
