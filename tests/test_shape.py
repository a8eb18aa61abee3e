"""Small pieces: no module of collab over 400 lines, no function over 60.

A function may be longer where a comment on the line just above its ``def`` (or its
decorators) starts with ``# long:`` and says why (a scanner's single loop, say).
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "collab"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in sorted(ROOT.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def _excused(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = lines[first - 2].strip() if first >= 2 else ""
    return above.startswith("# long:") and len(above) > len("# long:") + 10


def test_no_function_over_60_lines_without_a_reason() -> None:
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES and not _excused(lines, node):
                long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} ({size})")
    assert not long, "\n".join(long)
