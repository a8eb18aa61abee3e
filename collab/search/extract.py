"""A stored doc's plain text, for the index: bounded at every step, never ``to_py()``.

1. The doc's parts (snapshot, then log rows) go through collab's bounded scanner and nesting
   index first (``collab.ops.inspect.check_doc``, the server's caps): a doc that fails is not
   built at all (``ExtractError``).
2. A pycrdt Doc is built from the parts, on the calling (worker) thread, and walked with an
   explicit stack, never recursion: every root is read both as a sequence (a Y.Text yields
   its characters, an XmlFragment its elements, a Y.Array its items) and as a map (its
   values), which covers every root whatever type its writer gave it, since a decoded root
   has no type until someone asks for one. Nested shared types carry their own type.
3. What is kept: the text of Y.Text and Y.XmlText (without formatting), and strings in
   sequences; one line per text node. Map values that are plain strings, XML attributes and
   embeds are not text a user wrote in the document, and are skipped.

The walk stops at ``max_nodes`` shared types and ``max_chars`` characters (the rest of a huge
doc is not indexed) and never goes deeper than the server's ``max_type_depth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.errors import must_propagate
from collab.ops.inspect import check_doc
from collab.store.base import StoredDoc
from collab.wire import Limits

MAX_CHARS = 1_000_000
MAX_NODES = 100_000


class ExtractError(Exception):
    """The doc cannot be indexed (it fails the bounded scan, or yrs refused it)."""


def parts_of(stored: StoredDoc) -> list[tuple[str, bytes]]:
    parts = [("snapshot", stored.snapshot)] if stored.snapshot else []
    return parts + [(f"log seq {seq}", data) for seq, data in stored.updates]


def doc_text(
    stored: StoredDoc,
    limits: Limits,
    *,
    max_chars: int = MAX_CHARS,
    max_nodes: int = MAX_NODES,
) -> str:
    """The plain text of a stored doc ("" for an empty one); ExtractError if it cannot be."""
    parts = parts_of(stored)
    if not parts:
        return ""
    problem, _ = check_doc(parts, limits)
    if problem is not None:
        raise ExtractError(problem)
    try:
        doc: Doc[Any] = Doc()
        with doc.transaction(origin="search"):
            for _, data in parts:
                doc.apply_update(data)
        return _Walk(doc, limits.max_type_depth, max_chars, max_nodes).text()
    except BaseException as exc:  # pycrdt panics are BaseExceptions
        if must_propagate(exc):
            raise
        raise ExtractError(f"yrs refused the doc: {exc!r}") from None


class _Walk:
    def __init__(self, doc: Doc[Any], max_depth: int, max_chars: int, max_nodes: int) -> None:
        self.doc = doc
        self.max_depth = max_depth
        self.max_chars = max_chars
        self.nodes_left = max_nodes
        self.lines: list[str] = []
        self.chars = 0

    def text(self) -> str:
        stack: list[tuple[Any, int]] = []
        for name in sorted(self.doc.keys(), reverse=True):
            stack.append((self.doc.get(name, type=Map), 1))
            stack.append((self.doc.get(name, type=Array), 1))
        while stack and self.chars < self.max_chars and self.nodes_left > 0:
            node, depth = stack.pop()
            if isinstance(node, str):  # a line of a sequence, in its place among the nodes
                self._add(node)
                continue
            self.nodes_left -= 1
            children = list(self._visit(node, depth))
            stack.extend((child, depth + 1) for child in reversed(children))
        return "\n".join(self.lines)[: self.max_chars]

    def _add(self, text: str) -> None:
        if text:
            self.lines.append(text)
            self.chars += len(text) + 1

    def _visit(self, node: Any, depth: int) -> Iterator[Any]:
        """Take ``node``'s own text; yield its shared-type children (none past the depth)."""
        deeper = depth < self.max_depth
        if isinstance(node, XmlText):
            self._add("".join(c for c, _ in node.diff() if isinstance(c, str)))
        elif isinstance(node, Text):
            self._add(str(node))
        elif isinstance(node, XmlFragment | XmlElement):
            if deeper:
                yield from node.children
        elif isinstance(node, Array):
            yield from self._sequence(node, deeper)
        elif isinstance(node, Map) and deeper:
            for key in sorted(node.keys()):
                value = node.get(key)
                if _is_shared(value):
                    yield value

    def _sequence(self, array: Array[Any], deeper: bool) -> Iterator[Any]:
        """A root read as a sequence yields a Y.Text's characters one by one: runs of single
        characters are one line; longer strings (a Y.Array of strings) a line each."""
        run: list[str] = []
        for item in array:
            if isinstance(item, str) and len(item) == 1:
                run.append(item)
                continue
            if not isinstance(item, str) and not _is_shared(item):
                continue  # an embed or a plain value: not text, and not a break in the text
            if run:
                yield "".join(run)
                run = []
            if isinstance(item, str) or (deeper and _is_shared(item)):
                yield item
        if run:
            yield "".join(run)


def _is_shared(value: Any) -> bool:
    return isinstance(value, Text | XmlText | XmlElement | XmlFragment | Array | Map)
