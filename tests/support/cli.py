"""The ``collab`` command as a user runs it: a child process of this interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def collab(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m collab ARGS`` in ``cwd``; its exit code, output and errors (never raises on
    a non-zero exit: the tests read the code)."""
    return subprocess.run(
        [sys.executable, "-m", "collab", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
