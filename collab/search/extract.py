"""A stored doc's plain text, for the index: bounded at every step, never ``to_py()``.

1. The doc's parts (snapshot, then log rows) go through collab's bounded scanner and nesting
   index first (``collab.wire``, the server's caps, as ``collab verify`` walks them): a doc
   that fails is not built at all (``ExtractError``). The same walk tells each root's kind: a
   decoded root has no type until someone asks for one, so the index's parent runs say which
   roots hold text (strings, embeds, formats: a Y.Text or Y.XmlText), which hold XML
   elements (an XmlFragment), and the rest (a Y.Array, a Y.Map, or both).
2. A pycrdt Doc is built from the parts, on the calling (worker) thread, and walked with an
   explicit stack, never recursion, each root read as its kind (a text root is never read as
   a sequence: yrs can spin for ever indexing a Y.Text's characters as array items). Nested
   shared types carry their own type.
3. What is kept: the text of Y.Text and Y.XmlText (without formatting), and strings in
   sequences; one line per text node. Map values that are plain strings, XML attributes and
   embeds are not text a user wrote in the document, and are skipped.

The walk stops at ``max_nodes`` shared types and ``max_chars`` characters (the rest of a huge
doc is not indexed) and never goes deeper than the server's ``max_type_depth``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.errors import must_propagate
from collab.store.base import StoredDoc
from collab.wire import DocIndex, Limits, MalformedInput, scan_update

# An extraction runs on a worker thread, and a thread running Python keeps the GIL for up to
# the switch interval (5 ms) before the event loop's thread may take it back: every edit that
# arrives meanwhile waits. Once it has run YIELD_AFTER seconds since it last did, the walk gives
# the GIL up at once (``time.sleep(0)``, ``_Turns``), checked after each part applied, row
# scanned or node walked. Not after each one whatever its size: giving the GIL up is a trip
# through the kernel for both threads, and a re-index of a doc being typed into is a few small
# rows (it gave the GIL up about once per edit the server relayed, at 20 rooms x 2 clients).
YIELD_AFTER = 0.0005
CHUNK = 1024  # a Y.Array's items read in one transaction (``_Walk._sequence``)
# Values yrs hands over as plain Python (an Any): never a shared type to wrap
_PLAIN = (type(None), bool, int, float, str, bytes, list, dict)
MAX_CHARS = 1_000_000
MAX_NODES = 100_000
# A kept walk keeps its doc while the parts applied to it stay under this many bytes (a doc
# typed into is a few KB to a few hundred; the indexer keeps at most SCANS_KEPT walks).
KEEP_DOC_BYTES = 1 << 20
_TEXT_CONTENT = frozenset((4, 5, 6))  # String, Embed, Format: only a Y.Text holds these
_XML_TYPES = frozenset((3, 6))  # XmlElement, XmlText children: an XmlFragment
_TEXT_TYPES = frozenset((2, 6))  # Y.Text, Y.XmlText: the types text content may sit in


class _Turns:
    """Gives the GIL up once the caller has held it ``YIELD_AFTER`` seconds since the last time
    (a ``perf_counter`` read each call: no system call)."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self.since >= YIELD_AFTER:
            time.sleep(0)
            self.since = time.perf_counter()


class ExtractError(Exception):
    """The doc cannot be indexed (it fails the bounded scan, or yrs refused it)."""


def doc_text(
    stored: StoredDoc,
    limits: Limits,
    *,
    max_chars: int = MAX_CHARS,
    max_nodes: int = MAX_NODES,
    scan: KindScan | None = None,
) -> str:
    """The plain text of a stored doc ("" for an empty one); ExtractError if it cannot be.

    ``scan``: the doc's ``KindScan`` from an earlier call (``KindScan.continues``), which
    then walks only the rows it has not seen; it is left in an unknown state by an error.
    With a kept doc (``scan.doc``), ``stored`` may hold only the rows after ``scan.last_seq``
    (``DocumentStore.updates_after``); otherwise it must be the whole doc.
    """
    if scan is None:
        scan = KindScan(limits)
    if scan.doc is not None and scan.continues(stored):
        doc, parts = scan.doc, [u for seq, u in stored.updates if seq > scan.last_seq]
    else:
        doc, scan.built = Doc(), 0
        parts = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.updates]
        if not parts:
            return ""
    scan.doc = None  # until the parts are in: an error leaves the walk in an unknown state
    turns = _Turns()
    kinds = scan.catch_up(stored, turns)
    try:
        with doc.transaction(origin="search"):
            for data in parts:
                doc.apply_update(data)
                turns()
        text = _Walk(doc, kinds, limits.max_type_depth, max_chars, max_nodes, turns).text()
    except BaseException as exc:  # pycrdt panics are BaseExceptions
        if must_propagate(exc):
            raise
        raise ExtractError(f"yrs refused the doc: {exc!r}") from None
    scan.built += sum(len(data) for data in parts)
    scan.doc = doc if scan.built <= KEEP_DOC_BYTES else None
    return text


class KindScan:
    """Each root's kind ("text", "xml", else absent) from the bounded walk of a doc's parts,
    with the server's caps but those that bound a client frame rather than a stored doc (as
    ``collab verify`` does); ExtractError for a doc that breaks one.

    Also refused: text content (strings, embeds, formats) inside a nested type that is not
    a Y.Text or Y.XmlText. No Yjs client writes that, and pycrdt 0.14.13 reading a Y.Array
    whose items are such content can make yrs spin for ever holding the GIL.

    The walk is kept between re-indexes of one doc: while the doc is only appended to (the
    same generation and snapshot), the next ``catch_up`` walks the new rows alone, against
    the nesting index of those before (a doc typed into is not re-scanned whole every time).
    So is the pycrdt Doc built from them, while their bytes stay under ``KEEP_DOC_BYTES``:
    the next ``doc_text`` applies the new rows alone instead of building the doc again.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.stored_limits = dataclasses.replace(
            limits, allow_bigint=True, allow_nonfinite_floats=True
        )
        self.index = DocIndex(limits)
        self.kinds: dict[str, str] = {}
        self.types: dict[tuple[int, int], int] = {}  # a nested type's ID -> its typeRef
        self.base: tuple[str | None, int] | None = None  # generation and snapshot walked
        self.last_seq = 0  # the last log row walked
        self.doc: Doc[Any] | None = None  # built from every part walked, when kept
        self.built = 0  # bytes of the parts applied to ``doc``

    def continues(self, stored: StoredDoc) -> bool:
        """Whether ``stored`` is what this walk saw, plus rows appended since."""
        return self.base == (stored.generation, stored.snapshot_seq) and (
            stored.last_seq >= self.last_seq
        )

    def catch_up(
        self, stored: StoredDoc, turns: Callable[[], None] | None = None
    ) -> dict[str, str]:
        """Walk the parts of ``stored`` not walked yet; the kinds of its roots. ``turns`` is
        called after each row (``_Turns``: it gives the GIL up now and then)."""
        turns = turns or _Turns()
        if self.base is None:
            self.base = (stored.generation, stored.snapshot_seq)
            self.last_seq = stored.snapshot_seq
            if stored.snapshot:
                self._walk("snapshot", stored.snapshot)
        elif not self.continues(stored):
            raise ValueError("a KindScan continues the doc it walked, appended to")
        for seq, data in stored.updates:
            if seq > self.last_seq:
                self._walk(f"log seq {seq}", data)
                self.last_seq = seq
                turns()
        return self.kinds

    def _walk(self, label: str, data: bytes) -> None:
        own = self.stored_limits
        if len(data) > own.max_elements:
            own = dataclasses.replace(own, max_elements=len(data))
        try:
            info = scan_update(bytes(data), own)
            delta = self.index.check(info)
        except MalformedInput as exc:
            raise ExtractError(f"{label}: {exc.reason}") from None
        self.index.commit(delta)
        kinds, types = self.kinds, self.types
        for item in info.structs:
            if item.type_ref is not None:
                types[(item.client, item.clock)] = item.type_ref
        for item in info.structs:
            if not item.length:
                continue  # yrs drops zero-length items at decode (YJS-WIRE §1.4)
            if item.content_ref in _TEXT_CONTENT:
                kind = "text"
            elif item.type_ref in _XML_TYPES and item.parent_sub is None:
                kind = "xml"
            else:
                continue
            parent = self.index.parent_of(item.client, item.clock)
            if isinstance(parent, str):
                if kinds.get(parent) != "text":
                    kinds[parent] = kind
            elif kind == "text" and parent is not None and types.get(parent) not in _TEXT_TYPES:
                raise ExtractError(f"{label}: text content inside a type that is not text")


class _Walk:
    def __init__(
        self,
        doc: Doc[Any],
        kinds: dict[str, str],
        max_depth: int,
        max_chars: int,
        max_nodes: int,
        turns: Callable[[], None],
    ) -> None:
        self.doc = doc
        self.turns = turns
        self.kinds = kinds
        self.max_depth = max_depth
        self.max_chars = max_chars
        self.nodes_left = max_nodes
        self.lines: list[str] = []
        self.chars = 0

    def text(self) -> str:
        stack: list[tuple[Any, int]] = []
        for name in sorted(self.doc.keys(), reverse=True):
            kind = self.kinds.get(name)
            if kind == "text":
                stack.append((self.doc.get(name, type=Text), 1))
            elif kind == "xml":
                stack.append((self.doc.get(name, type=XmlFragment), 1))
            else:
                stack.append((self.doc.get(name, type=Map), 1))
                stack.append((self.doc.get(name, type=Array), 1))
        while stack and self.chars < self.max_chars and self.nodes_left > 0:
            node, depth = stack.pop()
            if isinstance(node, str):  # a line of a sequence, in its place among the nodes
                self._add(node)
                continue
            self.nodes_left -= 1
            self.turns()  # let the event loop's thread have the GIL now and then
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
        """A Y.Array's strings (a line each) and shared types; other values are not text.

        Read ``CHUNK`` items a transaction straight from yrs: pycrdt's iterator opens a
        transaction and checks the index for each item, 9x the time of the read itself (an
        array of thousands of plain values, re-indexed while it grows, is walked whole)."""
        integrated = array.integrated
        start = 0
        while True:
            with self.doc.transaction() as txn:
                length = integrated.len(txn._txn)
                stop = min(length, start + CHUNK)
                values = [integrated.get(txn._txn, i) for i in range(start, stop)]
            for value in values:
                if isinstance(value, str):
                    yield value
                elif deeper and not isinstance(value, _PLAIN):
                    item = array._maybe_as_type_or_doc(value)  # a shared type, or a subdoc
                    if _is_shared(item):
                        yield item
            if stop >= length:
                return
            start = stop
            self.turns()


def _is_shared(value: Any) -> bool:
    return isinstance(value, Text | XmlText | XmlElement | XmlFragment | Array | Map)
