"""Hatch build hook: the wheel carries the workspace bundle (collab/web/dist).

Like JupyterLab extensions' hatch-jupyter-builder: ``pip install .`` runs ``npm ci`` and
``web/build.mjs`` when Node.js is present and the bundle is missing or older than its sources.
Without Node, an existing bundle is packed as is; without either, the wheel is built without
one and ``collab serve`` says what to run. ``collab/web/bundle.py`` does the work (standard
library only, loaded here by path: collab's dependencies are not installed yet).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _bundle_module(root: Path) -> Any:
    spec = importlib.util.spec_from_file_location("_collab_bundle", root / "collab/web/bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class WorkspaceBundleHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        bundle = _bundle_module(root)
        sources, dist = root / "web", root / "collab/web/dist"
        found = bundle.read_manifest(dist)
        if bundle.is_checkout(sources):
            fresh = found is not None and found.source_hash == bundle.source_hash(sources)
            if not fresh and shutil.which("node") and shutil.which("npm"):
                self.app.display_info("collab: building the workspace bundle (web/)")
                bundle.build(sources, dist, install=True)
            elif not fresh:
                self.app.display_warning(
                    "collab: Node.js not found: the wheel carries "
                    + ("a stale workspace bundle" if found else "no workspace bundle")
                )
        if bundle.read_manifest(dist) is not None:
            build_data["artifacts"].append("collab/web/dist/")
