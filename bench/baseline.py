"""An earlier build of collab for a side-by-side run: a throwaway git worktree of a ref.

``checkout(ref)`` resolves the ref in the repository this runner belongs to, adds a detached
worktree of it in a temporary directory and removes it on the way out (also on Ctrl-C, which
the runner turns into an ordinary unwinding). Nothing is installed there: the server of the
baseline runs on the same interpreter and venv, with ``PYTHONPATH`` pointing at the worktree
(procs.collab_at), and ``check_code`` proves that each collab server imports the code it should.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from procs import ROOT, ServerSpec, imported_collab


class BaselineError(RuntimeError):
    pass


@dataclass(frozen=True)
class Baseline:
    ref: str  # as given on the command line
    commit: str  # the full sha it resolved to
    tree: Path  # the worktree's directory
    name: str  # the server's name in the run: collab@<short sha>


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Baseline]:
    """A detached worktree of ``ref``, removed when the block exits, however it exits."""
    commit = _git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}")
    short = _git("rev-parse", "--short", commit)
    tree = Path(tempfile.mkdtemp(prefix=f"collab-bench-{short}-"))
    try:
        _git("worktree", "add", "--detach", str(tree), commit)
        web_packages(tree)
        yield Baseline(ref, commit, tree, f"collab@{short}")
    finally:
        remove(tree)


def web_packages(tree: Path) -> None:
    """Give a ref that serves the web workspace its build tools: ``collab serve`` builds
    ``web/`` at start and refuses to run without the bundle. This checkout's
    ``web/node_modules`` when the ref pins the same packages, else ``npm ci`` there."""
    web = tree / "web"
    if not (web / "package.json").is_file() or (web / "node_modules").exists():
        return  # a ref from before the workspace, or already installed
    ours = ROOT / "web"
    same = (ours / "package-lock.json").is_file() and (web / "package-lock.json").read_bytes() == (
        ours / "package-lock.json"
    ).read_bytes()
    if same and (ours / "node_modules").is_dir():
        (web / "node_modules").symlink_to(ours / "node_modules", target_is_directory=True)
        return
    done = subprocess.run(
        ["npm", "ci", "--prefix", str(web), "--no-audit", "--no-fund", "--loglevel=error"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(f"npm ci in {web}: {done.stderr.strip() or done.returncode}")


def _registered(tree: Path) -> bool:
    listing = _git("worktree", "list", "--porcelain").splitlines()
    return f"worktree {tree}" in listing or f"worktree {tree.resolve()}" in listing


def remove(tree: Path) -> None:
    """Removes the worktree and its registration; a second Ctrl-C cannot cut this short."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with contextlib.suppress(BaselineError):
            _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree, ignore_errors=True)
        with contextlib.suppress(BaselineError):
            if _registered(tree):  # its directory is gone now: prune drops the stale entry
                _git("worktree", "prune")
    finally:
        signal.signal(signal.SIGINT, previous)


def check_code(specs: Mapping[str, ServerSpec], expected: Mapping[str, Path]) -> dict[str, str]:
    """Where every server named in ``expected`` imports collab from, checked against the tree
    it must come from (``<tree>/collab``); raises BaselineError naming the first mismatch."""
    found: dict[str, str] = {}
    for name, tree in expected.items():
        where = imported_collab(specs[name])
        if where != (tree / "collab").resolve():
            raise BaselineError(f"{name} would import collab from {where}, not from {tree}")
        found[name] = str(where)
    return found
