"""A stored doc's text: every kind of root, formatting and embeds left out, bounded, and a
hostile or broken doc refused before yrs builds it."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.search import extract
from collab.search.extract import CHUNK, ExtractError, doc_text
from collab.store.base import StoredDoc
from collab.wire import Limits
from tests.support.ybytes import id_parent_item, root_item, s, update


def stored(doc: Doc[Any], *later: bytes) -> StoredDoc:
    return StoredDoc("g", doc.get_update(), 0, [(i + 1, u) for i, u in enumerate(later)])


def test_text_of_every_kind_of_root_in_document_order() -> None:
    doc: Doc[Any] = Doc()
    doc["body"] = Text("plain text")
    doc["body"].insert_embed(5, {"image": "x.png"})
    doc["body"].format(0, 5, {"bold": True})
    fragment = doc.get("prosemirror", type=XmlFragment)
    fragment.children.append(
        XmlElement("paragraph", {"class": "secret-attr"}, [XmlText("离线消息推送")])
    )
    fragment.children.append(XmlElement("heading", {}, [XmlText("Title")]))
    fragment.children[0].children[0].format(0, 2, {"bold": True})
    doc["fields"] = Map({"note": Text("in a map"), "colour": "plain map string"})
    doc["list"] = Array(["a", Text("in an array"), "longer string"])
    text = doc_text(stored(doc), Limits())
    assert text.split("\n") == [
        "plain text",
        "in a map",
        "a",
        "in an array",
        "longer string",
        "离线消息推送",
        "Title",
    ]
    assert "secret-attr" not in text and "plain map string" not in text and "png" not in text


def test_updates_after_the_snapshot_count_and_deleted_text_does_not() -> None:
    doc: Doc[Any] = Doc()
    doc["t"] = Text("keep this, drop that")
    state = doc.get_state()
    snapshot = doc.get_update()
    del doc["t"][10:20]
    doc["t"] += " and add this"
    later = doc.get_update(state)
    assert doc_text(StoredDoc("g", snapshot, 0, [(1, later)]), Limits()) == (
        "keep this, and add this"
    )
    assert doc_text(StoredDoc(), Limits()) == ""


def test_a_long_array_keeps_its_order_across_the_chunks_it_is_read_in() -> None:
    doc: Doc[Any] = Doc()
    items: list[Any] = []
    for i in range(CHUNK * 2 + 7):  # plain values, strings and nested types, interleaved
        items.append([i, 1.5, True, {"k": "not text"}] if i % 3 else f"line {i}")
        if i % 500 == 1:
            items.append(Text(f"nested {i}"))
    doc["list"] = Array(items)
    expected = [x if isinstance(x, str) else str(x) for x in items if isinstance(x, str | Text)]
    assert doc_text(stored(doc), Limits()).split("\n") == expected


def test_bounded_by_characters_and_nodes() -> None:
    doc: Doc[Any] = Doc()
    doc["t"] = Text("x" * 5000)
    assert len(doc_text(stored(doc), Limits(), max_chars=100)) == 100
    doc["many"] = Array([Text(f"t{i}") for i in range(50)])
    assert len(doc_text(stored(doc), Limits(), max_nodes=10).split("\n")) < 12


def test_too_deep_or_broken_docs_are_refused() -> None:
    doc: Doc[Any] = Doc()
    node: Map[Any] = Map()
    doc["root"] = node
    for _ in range(5):
        child: Map[Any] = Map()
        node["child"] = child
        node = child
    node["text"] = Text("deep")
    assert doc_text(stored(doc), Limits()) == "deep"
    with pytest.raises(ExtractError, match="nesting too deep"):
        doc_text(stored(doc), Limits(max_type_depth=3))
    with pytest.raises(ExtractError):
        doc_text(StoredDoc("g", b"\x01\x02garbage", 0, []), Limits())


SPIN = """
from pycrdt import Doc, Text
from collab.search.extract import doc_text
from collab.store.base import StoredDoc
from collab.wire import Limits

updates = []
for client, text in zip([40999910, 69797376, 656051], ["离线消息推送 first", " second", " third"]):
    doc = Doc(client_id=client)
    doc["t"] = Text(text)
    updates.append((len(updates) + 1, doc.get_update()))
print(doc_text(StoredDoc("g", None, 0, updates), Limits()))
"""


def test_a_text_root_is_never_read_as_an_array() -> None:
    """These three writers' Y.Text, read as a Y.Array (pycrdt 0.14.13), makes yrs spin for
    ever holding the GIL; read as text it is fine. In a child process: a regression hangs
    the child, not the suite."""
    done = subprocess.run(
        [sys.executable, "-c", SPIN], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "third离线消息推送 first second"


def test_text_content_inside_an_array_is_refused() -> None:
    """What no Yjs client writes (a string item whose parent is a Y.Array) is not read:
    pycrdt would read it as the array's items, which is what spins."""
    doc: Doc[Any] = Doc()
    doc["list"] = Array([Text("fine")])
    assert doc_text(stored(doc), Limits()) == "fine"
    array = root_item("list", b"\x00", 7)  # ContentType, typeRef 0: a Y.Array at (7, 0)
    crafted = update((7, 0, [array, id_parent_item(7, 0, s("离线消息"), 4)]))
    with pytest.raises(ExtractError, match="inside a type that is not text"):
        doc_text(StoredDoc("g", crafted, 0, []), Limits())
    as_root = update((7, 0, [root_item("list", s("消息"), 4), root_item("list", b"\x00", 7)]))
    assert doc_text(StoredDoc("g", as_root, 0, []), Limits()) == "消息"  # a text root: as text


def test_a_kept_walk_reads_only_new_rows_and_still_refuses_what_it_must() -> None:
    """A doc re-indexed after more typing: the walk kept from the last re-index goes on from
    the rows it saw (the same kinds and text as a walk from scratch), text placed inside an
    array created rows earlier is still refused, and a compacted or recreated doc is walked
    again from its start."""
    from collab.search.extract import KindScan

    doc: Doc[Any] = Doc()
    rows: list[bytes] = []
    doc.observe(lambda event: rows.append(event.update))
    doc["body"] = Text("first")
    doc["fields"] = Map({"list": Array(["item"])})  # a nested Y.Array
    doc["body"] += " second"
    first = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)])
    scan = KindScan(Limits())
    assert doc_text(first, Limits(), scan=scan) == doc_text(first, Limits())
    assert "first second" in doc_text(first, Limits())
    walked = scan.last_seq
    doc["body"] += " third"
    doc["more"] = Text("new root")
    later = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)])
    assert scan.continues(later)
    scanned: list[str] = []
    walk = scan._walk

    def counted(label: str, data: bytes) -> None:
        scanned.append(label)
        walk(label, data)

    scan._walk = counted  # type: ignore[method-assign]
    assert doc_text(later, Limits(), scan=scan) == doc_text(later, Limits())
    assert len(scanned) == len(rows) - walked == 2
    # Text content whose parent is the nested array of row 2, in a row of its own: refused.
    list_id = next(k for k, ref in scan.types.items() if ref == 0)
    next_clock = scan.index.state_clock(list_id[0])
    crafted = update((list_id[0], next_clock, [id_parent_item(*list_id, s("离线消息"), 4)]))
    hostile = StoredDoc("g", None, 0, [*later.updates, (len(rows) + 1, crafted)])
    with pytest.raises(ExtractError, match="inside a type that is not text"):
        doc_text(hostile, Limits(), scan=scan)
    compacted = StoredDoc("g", doc.get_update(), len(rows), [])
    assert not scan.continues(compacted)
    assert not scan.continues(StoredDoc("g2", None, 0, later.updates))  # recreated
    with pytest.raises(ValueError):
        scan.catch_up(compacted)


def keeps_a_doc(scan: Any) -> bool:
    return scan.doc is not None


def test_a_kept_doc_applies_only_the_rows_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-index with the walk's doc kept is given only the new rows (as the indexer reads
    them, ``updates_after``) and finds the same text as a build from scratch; a doc grown past
    KEEP_DOC_BYTES is not kept, nor is one whose rows yrs refused."""
    from collab.search import extract

    doc: Doc[Any] = Doc()
    rows: list[bytes] = []
    doc.observe(lambda event: rows.append(event.update))
    doc["body"] = Text("first")
    doc["body"] += " second"
    scan = extract.KindScan(Limits())
    first = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)])
    assert doc_text(first, Limits(), scan=scan) == "first second"
    kept = scan.doc
    assert kept is not None and scan.built == sum(map(len, rows))
    seen = len(rows)
    doc["body"] += " third"
    doc["notes"] = Text("new root")
    newer = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)][seen:])
    whole = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)])
    assert doc_text(newer, Limits(), scan=scan) == doc_text(whole, Limits())
    assert scan.doc is kept and "third" in doc_text(whole, Limits())
    # No row after the walked ones reads as not continuing: the indexer then loads it whole.
    assert not scan.continues(StoredDoc("g", None, 0, []))

    monkeypatch.setattr(extract, "KEEP_DOC_BYTES", scan.built)
    doc["body"] += " fourth"
    grown = StoredDoc("g", None, 0, [(i + 1, u) for i, u in enumerate(rows)])
    assert "fourth" in doc_text(grown, Limits(), scan=scan)
    assert not keeps_a_doc(scan)  # over the cap: built again next time, from the whole doc
    monkeypatch.setattr(extract, "KEEP_DOC_BYTES", 1 << 20)
    assert "fourth" in doc_text(grown, Limits(), scan=scan)  # a scan without its doc rebuilds
    assert keeps_a_doc(scan)

    garbage = b"\x01\x02garbage"  # a row the bounded scan refuses
    broken = StoredDoc("g", None, 0, [*grown.updates, (len(rows) + 1, garbage)])
    with pytest.raises(ExtractError):
        doc_text(broken, Limits(), scan=scan)
    assert not keeps_a_doc(scan)


def test_the_walk_gives_the_gil_up_by_time_held_not_by_row(monkeypatch: Any) -> None:
    """``_Turns`` sleeps (gives the GIL up) once YIELD_AFTER has passed since it last did: never
    for a few small rows, and again and again through a long walk."""
    clock = [0.0]
    slept: list[float] = []
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])  # extract's ``time`` module
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(clock[0]))
    turns = extract._Turns()
    for _ in range(100):  # many calls, little time: no sleep
        clock[0] += extract.YIELD_AFTER / 1000
        turns()
    assert slept == []
    clock[0] += extract.YIELD_AFTER
    turns()
    assert len(slept) == 1
    for _ in range(10):  # a call past each YIELD_AFTER: a sleep each
        clock[0] += extract.YIELD_AFTER * 1.01
        turns()
    assert len(slept) == 11


def test_rows_applied_and_nodes_walked_each_ask_for_a_turn(monkeypatch: Any) -> None:
    asked = [0]

    class Counting:
        def __call__(self) -> None:
            asked[0] += 1

    monkeypatch.setattr(extract, "_Turns", Counting)
    doc: Doc[Any] = Doc()
    doc["list"] = Array([Map({"t": Text("x")}) for _ in range(5)])
    snapshot = doc.get_update()
    rows = []
    for i in range(20):
        before = doc.get_state()
        doc["list"].append(f"row {i}")
        rows.append(doc.get_update(before))
    text = doc_text(StoredDoc("g", snapshot, 0, [(i + 1, u) for i, u in enumerate(rows)]), Limits())
    assert text.split("\n") == ["x"] * 5 + [f"row {i}" for i in range(20)]
    # each of the 20 rows scanned and applied, and each node walked (the array, 5 maps, 5 texts)
    assert asked[0] >= 2 * 20 + 11
