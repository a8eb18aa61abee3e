"""The package's shape: imports only point down, and no module cycle.

Every module of ``collab`` belongs to exactly one layer below. A module may import its own
package, anything in a lower layer, and nothing in a higher layer or in a sibling of the same
layer (siblings are independent: ``store`` and ``meta`` never import each other). Every import
counts: module level, under ``TYPE_CHECKING`` and inside functions, because a lazy import is a
dependency all the same. Cycles are checked between modules, package ``__init__`` included.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parent.parent / "collab"

# Top to bottom. Each inner tuple is one layer of independent siblings.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("collab.__main__",),
    ("collab.cli",),
    ("collab.app",),
    ("collab.web",),
    ("collab.api", "collab.login"),
    ("collab.services",),
    ("collab.search",),
    ("collab.chat", "collab.files", "collab.webhooks"),
    ("collab.metrics",),
    ("collab.sync", "collab.ops"),
    ("collab.auth",),
    ("collab.meta", "collab.store", "collab.fanout"),
    ("collab.db",),
    ("collab.client",),  # the Python client library: see test_the_client_stands_alone
    ("collab.wire",),
    ("collab.errors", "collab.names", "collab.logs", "collab.settings", "collab.ratelimit"),
    ("collab",),
)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: pathlib.Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every collab module ``path`` imports, with its line (``from a import b`` may name a
    module ``a.b`` or a name in ``a``: the longest known module wins)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if not (name == "collab" or name.startswith("collab.")):
                continue
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known:
                yield name, node.lineno


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, layer entry) of the longest entry that is ``module`` or its package."""
    best: tuple[int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for entry in layer:
            inside = module == entry or (entry != "collab" and module.startswith(entry + "."))
            if inside and (best is None or len(entry) > len(best[1])):
                best = (index, entry)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best


def graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods)
    out: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(path, known):
            if target != name:
                edges.setdefault(target, line)
        out[name] = edges
    return out


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_imports_only_point_down() -> None:
    wrong = []
    for source, edges in graph().items():
        s_index, s_entry = layer_of(source)
        for target, line in edges.items():
            t_index, t_entry = layer_of(target)
            if t_entry == s_entry or t_entry == "collab":
                continue
            if t_index <= s_index:
                kind = "sibling" if t_index == s_index else "upward"
                wrong.append(f"{source}:{line} imports {target} ({kind})")
    assert not wrong, "\n".join(sorted(wrong))


def find_cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle in the graph as a path, or None (iterative DFS, three colours)."""
    colour: dict[str, int] = {}
    for start in sorted(edges):
        if colour.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if colour.get(child) == 1:
                return [*path[path.index(child) :], child]
            if not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, {})))))
    return None


def test_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"a": 1}}) is None


def test_the_client_stands_alone() -> None:
    """``collab.client`` is a library for programs, not part of the server: it imports no
    server module (collab.wire's sans-IO framing at most), and no server module imports it."""
    allowed = ("collab.client", "collab.wire")
    wrong = []
    for source, edges in graph().items():
        client = source == "collab.client" or source.startswith("collab.client.")
        for target, line in edges.items():
            target_client = target == "collab.client" or target.startswith("collab.client.")
            if client and not any(target == a or target.startswith(a + ".") for a in allowed):
                wrong.append(f"{source}:{line} imports {target}")
            if not client and target_client:
                wrong.append(f"{source}:{line} imports the client ({target})")
    assert not wrong, "\n".join(sorted(wrong))
