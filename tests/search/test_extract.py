"""A stored doc's text: every kind of root, formatting and embeds left out, bounded, and a
hostile or broken doc refused before yrs builds it."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from collab.search.extract import ExtractError, doc_text
from collab.store.base import StoredDoc
from collab.wire import Limits


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
