"""The workspace bundle: where it is, whether it matches its sources, and building it.

The browser app's sources live in the checkout's top-level ``web/`` (TypeScript, bundled by
esbuild from the pinned packages of ``web/package-lock.json``); the bundle goes to
``collab/web/dist/``, which the wheel carries (``hatch_build.py`` builds it when Node is
present). ``manifest.json`` is written last and names the hashed assets and the digest of the
sources it was built from (:func:`source_hash`), so a server never serves a stale or half-built
bundle silently:

- from a checkout (``web/`` beside the package), :func:`ensure_bundle` rebuilds when the sources
  changed since the bundle was built, or raises :class:`BundleError` saying what to run when it
  cannot (no Node, no ``web/node_modules``);
- from an installation (no ``web/``), the wheel's bundle is used as is; a missing one is a
  :class:`BundleError` too.

Standard library only: ``hatch_build.py`` loads this file by path, before collab's
dependencies are installed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # collab/
DIST = PACKAGE / "web" / "dist"
SOURCES = PACKAGE.parent / "web"  # present in a checkout (and an sdist), not in a wheel
# What the bundle is made of: every file under web/src, the build script and the pins.
_INPUTS = ("build.mjs", "package.json", "package-lock.json")
BUILD_COMMAND = "npm ci --prefix web && node web/build.mjs"


class BundleError(Exception):
    """The workspace bundle is missing or stale and cannot be built here; the message says
    what to run. A startup error (``collab serve`` exits with it), never a client's."""


@dataclass(frozen=True)
class Manifest:
    root: Path
    source_hash: str
    version: str
    assets: dict[str, str]  # logical name ("main.js") -> path under root ("assets/main-X.js")
    files: frozenset[str]  # every servable path under root besides index.html

    @property
    def index_template(self) -> str:
        return (self.root / "index.html").read_text("utf-8")


def read_manifest(root: Path = DIST) -> Manifest | None:
    """The bundle at ``root``, or None when there is none (or only a half-built one)."""
    try:
        data = json.loads((root / "manifest.json").read_text("utf-8"))
        return Manifest(
            root=root,
            source_hash=str(data["source_hash"]),
            version=str(data["version"]),
            assets={str(k): str(v) for k, v in data["assets"].items()},
            files=frozenset(str(f) for f in data["files"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def is_checkout(sources: Path = SOURCES) -> bool:
    return (sources / "package.json").is_file() and (sources / "src").is_dir()


def _input_files(sources: Path) -> list[Path]:
    found = [p for p in (sources / "src").rglob("*") if p.is_file()]
    found += [sources / name for name in _INPUTS if (sources / name).is_file()]
    return sorted(found)


def source_hash(sources: Path = SOURCES) -> str:
    """SHA-256 over the names and contents of the bundle's inputs (mtimes lie after a
    checkout; contents do not)."""
    digest = hashlib.sha256()
    for path in _input_files(sources):
        digest.update(path.relative_to(sources).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _build_lock(dist: Path) -> Iterator[None]:
    """One build at a time per bundle (several servers of a test run may start together)."""
    dist.parent.mkdir(parents=True, exist_ok=True)
    with open(dist.parent / ".dist.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(sources: Path = SOURCES, dist: Path = DIST, *, install: bool = False) -> Manifest:
    """Build the bundle into ``dist`` (atomically: into a temporary sibling, then renamed).

    ``install`` runs ``npm ci`` first (the wheel's build hook does; ``collab serve`` does not
    touch ``node_modules``). BundleError when Node or the packages are missing.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        raise BundleError(f"the workspace bundle needs Node.js to build: install it, then {_run()}")
    if install:
        if npm is None:
            raise BundleError(f"npm is missing: install Node.js with npm, then {_run()}")
        _call([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], sources)
    if not (sources / "node_modules" / "esbuild").is_dir():
        raise BundleError(f"web/node_modules is missing: {_run()}")
    digest = source_hash(sources)
    with _build_lock(dist):
        found = read_manifest(dist)
        if found is not None and found.source_hash == digest:
            return found  # another process built it while we waited
        staging = dist.with_name(f"{dist.name}.tmp-{os.getpid()}")
        _call([node, "build.mjs", "--out", str(staging), "--source-hash", digest], sources)
        old = dist.with_name(f"{dist.name}.old-{os.getpid()}")
        if dist.exists():
            dist.rename(old)
        staging.rename(dist)
        shutil.rmtree(old, ignore_errors=True)
    built = read_manifest(dist)
    if built is None:
        raise BundleError(f"web/build.mjs wrote no manifest to {dist}")
    return built


def _run() -> str:
    return f"run `{BUILD_COMMAND}` in the checkout (or reinstall collab with Node present)"


def _call(argv: list[str], cwd: Path) -> None:
    try:
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip()[-2000:]
        raise BundleError(f"`{' '.join(argv[:2])}` failed in {cwd}:\n{tail}") from None


def ensure_bundle(sources: Path | None = None, dist: Path | None = None) -> Manifest:
    """The bundle to serve: rebuilt first when a checkout's sources changed since it was
    built; BundleError (saying what to run) when it is missing or stale and cannot be built.
    (Defaults: this package's ``SOURCES`` and ``DIST``.)"""
    sources = SOURCES if sources is None else sources
    dist = DIST if dist is None else dist
    found = read_manifest(dist)
    if not is_checkout(sources):
        if found is None:
            raise BundleError(
                f"no workspace bundle in {dist}: this installation was built without Node.js; "
                "reinstall collab with Node.js present (`pip install .` builds it)"
            )
        return found
    if found is not None and found.source_hash == source_hash(sources):
        return found
    return build(sources, dist)
