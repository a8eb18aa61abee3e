"""collab.wire.index.DocIndex: shared-type depth and pending structs across updates (§4)."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest

from collab.wire import DocIndex, Limits, MalformedInput, UnresolvedReference, scan_update
from tests.support.ybytes import (
    MAP_TYPE,
    any_item,
    id_parent_item,
    origin_item,
    root_item,
    s,
    update,
    vu,
)
from tests.wire.test_update import PY_UPDATES, YJS_VECTORS

L = Limits()


def feed(index: DocIndex, u: bytes, limits: Limits = L) -> int:
    delta = index.check(scan_update(u, limits))
    index.commit(delta)
    return delta.pending_structs


def level(client: int, n: int) -> bytes:
    """Struct for map level n (n >= 1) of a chain r.k.k.k..., item clock n - 1 (§4)."""
    if n == 1:
        return root_item("r", MAP_TYPE, 7, sub="k")
    return id_parent_item(client, n - 2, MAP_TYPE, 7, sub="k")


# --- real documents ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(PY_UPDATES) - {"unicode"}))
def test_pycrdt_sequences_and_full_state(name: str) -> None:
    *ups, full, _ = PY_UPDATES[name]
    index = DocIndex(L)
    for u in ups:
        assert feed(index, u) == 0
    rebuilt = DocIndex.from_update(full, L)
    assert rebuilt.pending_count == 0
    for c, (_, end) in scan_update(full, L).clients.items():
        assert index.state_clock(c) == end == rebuilt.state_clock(c)
    # re-sending everything (a reconnect SyncStep2) is a no-op, never pending
    delta = rebuilt.check(scan_update(full, L))
    assert delta.pending_structs == 0 and delta.integrated_structs == 0


def test_pycrdt_zero_length_string_quirk_is_refused_with_one_clear_error() -> None:
    # pycrdt 0.14.13 emits an empty ContentString and names it as right origin of the next
    # insert (§1.4). yrs never integrates that insert: not from the incremental update, not
    # from a whole state that carries the empty item too (the text stays without it). So the
    # index refuses it (issue 8 item 16) instead of counting it pending for ever.
    *ups, full, _ = PY_UPDATES["unicode"]
    index = DocIndex(L)
    for u in ups[:-1]:
        assert feed(index, u) == 0
    with pytest.raises(UnresolvedReference, match=r"^item names its own clock as a neighbour"):
        index.check(scan_update(ups[-1], L))
    with pytest.raises(UnresolvedReference, match=r"pycrdt 0\.14\.13 empty item"):
        DocIndex.from_update(full, L)
    # why refusing loses nothing yrs would have kept: it integrates neither form
    for sequence in (ups, [full]):
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        for u in sequence:
            doc.apply_update(u)
        assert str(doc.get("t", type=pycrdt.Text)) == "a"


@pytest.mark.parametrize("name", ["text_insert", "map_any", "nested", "xml", "two_clients"])
def test_yjs_sequences(name: str) -> None:
    index = DocIndex(L)
    for h in YJS_VECTORS[name]:
        assert feed(index, bytes.fromhex(h)) == 0


def test_yjs_full_states_and_skip() -> None:
    for name in ("text_full", "nested_full", "two_clients_full", "gc_full", "two_clients_merged"):
        index = DocIndex.from_update(bytes.fromhex(YJS_VECTORS[name][0]), L)
        assert index.pending_count == 0, name
    index = DocIndex(L)
    # merged ops 0 and 2 with a Skip hole: the item after the hole is pending
    assert feed(index, bytes.fromhex(YJS_VECTORS["skip_merge"][0])) == 1
    assert index.state_clock(7) == 1


def test_from_gc_state_then_more_updates() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    arr = doc.get("a", type=pycrdt.Array)
    arr.append(pycrdt.Map({"inner": pycrdt.Map({"t": pycrdt.Text("x" * 50)})}))
    text = doc.get("t", type=pycrdt.Text)
    text += "hello world"
    del arr[0]
    del text[0:6]
    index = DocIndex.from_update(doc.get_update(), L)
    ups: list[bytes] = []
    doc.observe(lambda e: ups.append(e.update))
    arr.append(pycrdt.Map({"again": pycrdt.Array([pycrdt.Map({"deep": 1})])}))
    text.insert(0, "HELLO ")
    del text[3:5]
    other: pycrdt.Doc[Any] = pycrdt.Doc()
    other.apply_update(doc.get_update())
    other.get("t", type=pycrdt.Text).insert(2, "from other")
    ups.append(other.get_update(doc.get_state()))
    for u in ups:
        assert feed(index, u) == 0
    assert (
        index.state_clock(doc.client_id)
        == scan_update(doc.get_update(), L).clients[doc.client_id][1]
    )


def test_reconnect_sync_step2_overlapping_content_passes() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text += "abc"
    index = DocIndex.from_update(doc.get_update(), L)
    text += "def"
    m = doc.get("m", type=pycrdt.Map)
    m["nested"] = pycrdt.Map({"x": pycrdt.Array([1])})
    # the client's SyncStep2 against an empty state vector: everything, overlapping
    delta = index.check(scan_update(doc.get_update(), L))
    assert delta.pending_structs == 0 and delta.integrated_structs > 0
    index.commit(delta)
    assert (
        index.state_clock(doc.client_id)
        == scan_update(doc.get_update(), L).clients[doc.client_id][1]
    )


def test_runs_grow_with_sessions_not_characters() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    ups: list[bytes] = []
    doc.observe(lambda e: ups.append(e.update))
    for i in range(500):
        text.insert(i % 7, "x")
    index = DocIndex(L)
    for u in ups:
        feed(index, u)
    assert index.run_count == 1
    assert DocIndex.from_update(doc.get_update(), L).run_count == 1


# --- depth ---------------------------------------------------------------------------------


def test_map_chain_one_level_per_update_refused_at_65() -> None:
    index = DocIndex(L)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for n in range(1, 65):
        u = update((9, n - 1, [level(9, n)]))
        assert feed(index, u) == 0
        doc.apply_update(u)
    assert index.type_depth(9, 63) == 64
    u65 = update((9, 64, [level(9, 65)]))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        index.check(scan_update(u65, L))
    assert index.state_clock(9) == 64  # nothing changed
    # the same chain from the stored state refuses the same step
    rebuilt = DocIndex.from_update(doc.get_update(), L)
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        rebuilt.check(scan_update(u65, L))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        DocIndex.from_update(doc.get_update(), Limits(max_type_depth=32))


def test_chain_in_one_update_refused() -> None:
    ok = update((9, 0, [level(9, n) for n in range(1, 65)]))
    assert DocIndex(L).check(scan_update(ok, L)).max_depth == 64
    deep = update((9, 0, [level(9, n) for n in range(1, 66)]))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        DocIndex(L).check(scan_update(deep, L))


def test_chain_alternating_clients_in_one_update_resolves_to_fixpoint() -> None:
    # level n belongs to client 1 (odd n) or 2 (even n); its parent is the previous level,
    # owned by the other client: resolution needs the worklist across sections.
    def chain(levels: int) -> bytes:
        a: list[bytes] = []
        b: list[bytes] = []
        for n in range(1, levels + 1):
            own, other = (a, b) if n % 2 else (b, a)
            if n == 1:
                own.append(root_item("r", MAP_TYPE, 7, sub="k"))
            else:
                pc = 2 if n % 2 else 1
                own.append(id_parent_item(pc, len(other) - 1, MAP_TYPE, 7, sub="k"))
        return update((1, 0, a), (2, 0, b))  # client 1 first: it waits on client 2

    delta = DocIndex(L).check(scan_update(chain(64), L))
    assert delta.max_depth == 64 and delta.pending_structs == 0
    pycrdt.Doc().apply_update(chain(64))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        DocIndex(L).check(scan_update(chain(65), L))


def test_implicit_parent_through_origin_counts() -> None:
    base = update((9, 0, [level(9, n) for n in range(1, 65)]))
    index = DocIndex(L)
    feed(index, base)
    # clock 64: a plain value inside the level-64 map (parent ID (9, 63))
    feed(index, update((9, 64, [id_parent_item(9, 63, any_item(b"\x7e"), 8, sub="v")])))
    # clock 65: a map whose parent is inherited from its origin (9, 64): depth 65
    implicit = update((9, 65, [origin_item(MAP_TYPE, 7, origin=(9, 64))]))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        index.check(scan_update(implicit, L))
    right = update((9, 65, [origin_item(MAP_TYPE, 7, right=(9, 64))]))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        index.check(scan_update(right, L))


# --- pending, unresolved -------------------------------------------------------------------


def test_clock_gap_is_pending_then_resolved_and_checked() -> None:
    index = DocIndex(L)
    feed(index, update((9, 0, [level(9, n) for n in range(1, 65)])))  # depth 64, clocks 0..63
    # clock 65 arrives before 64: pending; its parent comes from its origin, unknown yet
    later = update((9, 65, [origin_item(MAP_TYPE, 7, origin=(9, 64))]))
    delta = index.check(scan_update(later, L))
    assert delta.pending_structs == 1 and delta.pending_total == 1 and delta.max_depth == 0
    index.commit(delta)
    assert index.state_clock(9) == 64
    # the gap filler (a value in the level-64 map) makes it integrate: depth 65, checked now
    filler = update((9, 64, [id_parent_item(9, 63, any_item(b"\x7e"), 8, sub="v")]))
    with pytest.raises(MalformedInput, match=r"^type nesting too deep$"):
        index.check(scan_update(filler, L))
    # a harmless gap filler resolves pending items
    index2 = DocIndex(L)
    feed(index2, update((5, 0, [root_item("t", s("a"), 4)])))
    assert feed(index2, update((5, 2, [origin_item(s("c"), 4, origin=(5, 1))]))) == 1
    delta = index2.check(scan_update(update((5, 1, [origin_item(s("b"), 4, origin=(5, 0))])), L))
    assert delta.resolved_pending == 1 and delta.pending_total == 0
    index2.commit(delta)
    assert index2.state_clock(5) == 3


def test_unknown_cross_client_origin_is_pending_an_unknown_parent_id_refused() -> None:
    index = DocIndex(L)
    u = update((5, 0, [origin_item(s("x"), 4, origin=(77, 3))]))
    delta = index.check(scan_update(u, L))
    assert delta.pending_structs == 1
    # A parked item whose parent ID is unknown could turn into a bad parent once that clock
    # arrives, failing the update of whoever sent it (see test_parked_parent_cannot_spoil...).
    u2 = update((6, 0, [id_parent_item(77, 0, MAP_TYPE, 7, sub="k")]))
    with pytest.raises(MalformedInput, match=r"^parent ID names an item the document does not"):
        index.check(scan_update(u2, L))
    # its own client's, behind a clock gap: the same
    u3 = update((6, 5, [id_parent_item(6, 2, s("x"), 4, sub="k")]))
    with pytest.raises(MalformedInput, match=r"^parent ID names an item the document does not"):
        index.check(scan_update(u3, L))


def test_own_future_reference_raises() -> None:
    u = update((5, 0, [root_item("t", s("a"), 4), origin_item(s("b"), 4, origin=(5, 7))]))
    with pytest.raises(UnresolvedReference, match=r"^reference to own future clock$"):
        DocIndex(L).check(scan_update(u, L))


def test_delete_ranges_on_unknown_content_are_pending() -> None:
    index = DocIndex(L)
    feed(index, update((5, 0, [root_item("t", s("abc"), 4)])))
    known = update(ds=b"\x01\x05\x01\x00\x03")
    assert index.check(scan_update(known, L)).pending_structs == 0
    unknown = update(ds=b"\x02\x05\x01\x02\x05\x06\x01\x00\x01")
    delta = index.check(scan_update(unknown, L))
    assert delta.pending_deletes == 2 and delta.pending_structs == 2


def test_too_many_roots() -> None:
    index = DocIndex(Limits(max_roots=3))
    u = update((5, 0, [root_item(name, s("a"), 4) for name in ("a", "b", "c")]))
    feed(index, u, Limits(max_roots=3))
    feed(index, update((5, 3, [root_item("a", s("x"), 4)])))
    with pytest.raises(MalformedInput, match=r"^too many root types$"):
        index.check(scan_update(update((5, 4, [root_item("d", s("x"), 4)])), L))


def test_gc_neighbour_and_gc_parent() -> None:
    index = DocIndex(L)
    # GC at client 5 clocks 0..2, then items referencing it
    feed(index, update((5, 0, [b"\x00\x03"])))
    u = update((6, 0, [origin_item(MAP_TYPE, 7, origin=(5, 1)), id_parent_item(5, 0, MAP_TYPE, 7)]))
    delta = index.check(scan_update(u, L))
    assert delta.pending_structs == 0 and delta.max_depth == 1


# --- parent IDs that are not shared types (issue 8 item 15) --------------------------------


def _text_and_map() -> tuple[pycrdt.Doc[Any], int]:
    """A doc with text "abcdef" (clocks 0..5), map m.x = Y.Map (6) holding y=1 (7), m.a=5 (8)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, "abcdef")
    m = doc.get("m", type=pycrdt.Map)
    m["x"] = pycrdt.Map({"y": 1})
    m["a"] = 5
    return doc, doc.client_id


def _child_of(parent: tuple[int, int], client: int = 777) -> bytes:
    return update((client, 0, [id_parent_item(*parent, s("z"), 4, sub="q")]))


def _yrs_accepts(state: bytes, u: bytes) -> bool:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    try:
        doc.apply_update(u)
    except (RuntimeError, ValueError):
        return False
    return True


def test_parent_id_of_a_live_non_type_item_is_refused_as_yrs_would() -> None:
    doc, c = _text_and_map()
    state = doc.get_update()
    fed = DocIndex(L)
    feed(fed, state)
    loaded = DocIndex.from_update(state, L)
    cases = {
        (c, 1): False,  # inside the live text item
        (c, 6): True,  # the nested map: a type
        (c, 7): False,  # the Any value y=1 inside it
        (c, 8): False,  # the Any value m.a
    }
    for parent, ok in cases.items():
        u = _child_of(parent)
        assert _yrs_accepts(state, u) is ok, parent  # the premise: what yrs 0.28 does
        for index in (fed, loaded):
            if ok:
                index.check(scan_update(u, L))
            else:
                with pytest.raises(MalformedInput, match=r"^parent ID names an item that is not"):
                    index.check(scan_update(u, L))


def test_parent_id_of_a_deleted_or_collected_item_is_accepted_as_yrs_does() -> None:
    # An offline client may still insert into a map someone deleted (and the server collected)
    # meanwhile: yrs accepts a parent that is deleted, so must the index.
    doc, c = _text_and_map()
    ups: list[bytes] = []
    index = DocIndex.from_update(doc.get_update(), L)
    doc.observe(lambda e: ups.append(e.update))
    del doc.get("t", type=pycrdt.Text)[1:3]  # clocks 1, 2 deleted (Deleted content after GC)
    del doc.get("m", type=pycrdt.Map)["x"]  # the map (6) deleted, its child y (7) collected
    for u in ups:
        feed(index, u)
    state = doc.get_update()
    loaded = DocIndex.from_update(state, L)
    assert loaded.tombstone_count >= 2
    for parent in ((c, 1), (c, 2), (c, 6), (c, 7)):
        u = _child_of(parent)
        assert _yrs_accepts(state, u), parent
        index.check(scan_update(u, L))
        loaded.check(scan_update(u, L))
    for parent in ((c, 0), (c, 3), (c, 8)):  # still live, still not types
        assert not _yrs_accepts(state, _child_of(parent)), parent
        with pytest.raises(MalformedInput, match=r"^parent ID names an item that is not"):
            loaded.check(scan_update(_child_of(parent), L))


def test_parent_id_inside_the_same_update() -> None:
    client = 4242
    any_then_child = update(
        (client, 0, [root_item("m2", any_item(b"\x7e"), 8), id_parent_item(client, 0, s("x"), 4)])
    )
    assert not _yrs_accepts(b"\x00\x00", any_then_child)
    with pytest.raises(MalformedInput, match=r"^parent ID names an item that is not"):
        DocIndex(L).check(scan_update(any_then_child, L))
    # a Deleted item, or a GC range, of the same update is a legitimate parent
    for dead in (root_item("m2", b"\x01", 1), b"\x00\x01"):
        u = update((client, 0, [dead, id_parent_item(client, 0, s("x"), 4, sub="k")]))
        assert _yrs_accepts(b"\x00\x00", u)
        DocIndex(L).check(scan_update(u, L))
    # deleted by this update's own delete set: too late, yrs checks before applying it
    doc, c = _text_and_map()
    ds = b"\x01" + vu(c) + b"\x01\x04\x01"
    late = update((777, 0, [id_parent_item(c, 4, s("z"), 4, sub="q")]), ds=ds)
    assert not _yrs_accepts(doc.get_update(), late)
    with pytest.raises(MalformedInput, match=r"^parent ID names an item that is not"):
        DocIndex.from_update(doc.get_update(), L).check(scan_update(late, L))


def test_parked_parent_cannot_spoil_the_next_update_of_its_client() -> None:
    # Why an unknown parent ID is refused rather than counted pending: yrs would park the item
    # and retry it on every update; the honest client whose future clock it names would then
    # have its next edit fail in yrs (and half-applied), costing a rebuild and its socket.
    honest = update((5, 0, [root_item("t", s("hello"), 4)]))
    parked = _child_of((5, 6), client=9)
    typing = update((5, 5, [origin_item(s("abc"), 4, origin=(5, 4))]))
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(honest)
    doc.apply_update(parked)  # yrs takes it, pending
    with pytest.raises(RuntimeError, match="must be deleted or shared ref type"):
        doc.apply_update(typing)
    index = DocIndex(L)
    feed(index, honest)
    with pytest.raises(MalformedInput, match=r"^parent ID names an item the document does not"):
        index.check(scan_update(parked, L))
    assert feed(index, typing) == 0


def test_stale_delta_refused() -> None:
    index = DocIndex(L)
    d1 = index.check(scan_update(update((5, 0, [root_item("t", s("a"), 4)])), L))
    d2 = index.check(scan_update(update((6, 0, [root_item("t", s("a"), 4)])), L))
    index.commit(d1)
    with pytest.raises(RuntimeError, match="stale IndexDelta"):
        index.commit(d2)


def test_parent_of_a_committed_item() -> None:
    """The parent runs answer for any committed clock: explicit, inherited through an
    origin, nested; unknown clocks have none."""
    index = DocIndex(L)
    feed(
        index,
        update(
            (
                7,
                0,
                [
                    root_item("r", MAP_TYPE, 7, sub="k"),  # (7, 0): a map under root r
                    id_parent_item(7, 0, s("ab"), 4, sub="x"),  # (7, 1-2): in that map
                    origin_item(s("c"), 4, origin=(7, 2)),  # (7, 3): inherits the map
                ],
            )
        ),
    )
    assert index.parent_of(7, 0) == "r"
    assert index.parent_of(7, 1) == index.parent_of(7, 2) == index.parent_of(7, 3) == (7, 0)
    assert index.parent_of(7, 4) is None and index.parent_of(8, 0) is None
