"""bench/baseline.py: a baseline worktree gets the web build tools its server needs."""

from __future__ import annotations

from pathlib import Path

import baseline
import pytest


def test_a_ref_pinning_our_web_packages_shares_our_node_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for tree in (ours, theirs):
        (tree / "web").mkdir(parents=True)
        (tree / "web" / "package.json").write_text("{}")
        (tree / "web" / "package-lock.json").write_text('{"lockfileVersion": 3}')
    (ours / "web" / "node_modules" / "esbuild").mkdir(parents=True)
    monkeypatch.setattr(baseline, "ROOT", ours)
    baseline.web_packages(theirs)
    linked = theirs / "web" / "node_modules"
    assert linked.is_symlink() and (linked / "esbuild").is_dir()
    baseline.web_packages(theirs)  # already there: nothing to do
    assert linked.is_symlink()


def test_a_ref_from_before_the_workspace_needs_nothing(tmp_path: Path) -> None:
    baseline.web_packages(tmp_path)
    assert not (tmp_path / "web").exists()
