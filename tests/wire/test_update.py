"""collab.wire.update: the bounded update / state-vector scanner (YJS-WIRE §1, §2)."""

from __future__ import annotations

import contextlib
import random
import struct
import time
from typing import Any

import pycrdt
import pytest

from collab.wire import (
    DocIndex,
    Limits,
    MalformedInput,
    scan_state_vector,
    scan_update,
)
from tests.support.ybytes import MAP_TYPE, any_item, origin_item, root_item, s, update, vu

L = Limits()

# Generated once with yjs 13.6.33 under node 20 (clientIDs fixed); see the test docstrings.
YJS_VECTORS: dict[str, list[str]] = {
    "text_insert": [
        "0101010004010174016100",
        "0101010184010002626300",
        "000101010001",
        "01010103c4010001011268c3a96c6c6f20f09f98802077c3b6726c6400",
    ],
    "text_full": [
        "010301000101017401840100026263c4010001011268c3a96c6c6f20f09f98802077c3b6726c640101010001"
    ],
    "map_any": [
        "010102002801016d03696e74017d2a00",
        "010102012801016d036e6567017d4500",
        "010102022801016d0166017c3fc0000000",
        "010102032801016d03626967017c5380000000",
        "010102042801016d017301770373747200",
        "010102052801016d0174017800",
        "010102062801016d016e017e00",
        "010102072801016d036172720175037d0175027d0275017d037601016177016200",
        "010102082801016d036f626a0176010178760101797601017a7d0100",
        "010102092301016d0362696e0301020300",
        "0101020aa80200017d2b0102010001",
        "000102010401",
    ],
    "nested": [
        "01010300270104726f6f74046c6973740000",
        "01010301070003000100",
        "0101030228000301016b0177017600",
        "0101030327000301037478740200",
        "01010304040003030b6e6573746564207465787400",
    ],
    "nested_full": [
        "01050300270104726f6f74046c69737400070003000128000301016b01770176270003010374787402"
        "040003030b6e6573746564207465787400"
    ],
    "xml": [
        "0101040007010764656661756c74030970617261677261706800",
        "01010401070004000600",
        "010304020600040104626f6c64047472756584040204626f6c6486040604626f6c64046e756c6c00",
        "01010408c4040604070620706c61696e00",
        "0102040e460402066974616c69630474727565c604040405066974616c6963046e756c6c00",
        "01030410c60405040604626f6c64046e756c6cc504100406117b22696d616765223a22782e706e67227d"
        "c60411040604626f6c64047472756500",
        "010104132800040005616c69676e0177046c65667400",
    ],
    "two_clients": [
        "01010500040101740661626364656600",
        "01010600c4050205030258590105010002",
        "000105010002",
    ],
    "two_clients_merged": ["02010600c40502050302585901050004010174066162636465660105010002"],
    "two_clients_full": [
        "02010600c40502050302585903050001010174028405010163840502036465660105010002"
    ],
    "skip_merge": ["010307000401017401610a01840701016300"],
    "gc_full": ["01020800010101610100020108010003"],
    # YJS-WIRE §1.7 and §1.2 examples
    "wire_examples": [
        "010101000401017401610" + "0",
        "01020c0001010161010002010c010003",
        "01030d000401017401610a01840d01016300",
        "010101002801016d03696e74017d2a00",
        "010101002301016d0362696e0301020300",
    ],
}


def _pycrdt_updates() -> dict[str, list[bytes]]:
    """name -> [incremental updates..., full state, source state vector]."""
    out: dict[str, list[bytes]] = {}

    def record(name: str, build: object) -> None:
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        ups: list[bytes] = []
        doc.observe(lambda e: ups.append(e.update))
        build(doc)  # type: ignore[operator]
        ups.append(doc.get_update())
        ups.append(doc.get_state())
        out[name] = ups

    def text(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t += "hello world"
        del t[2:7]
        t.insert(1, "X")

    def any_values(doc: pycrdt.Doc[Any]) -> None:
        m = doc.get("m", type=pycrdt.Map)
        m["i"] = 1
        m["f"] = 1.25
        m["s"] = "str"
        m["b"] = b"\x00\x01"
        m["n"] = None
        m["l"] = [1, [2, [3, {"k": "v"}]], True]
        a = doc.get("a", type=pycrdt.Array)
        a.extend([1, "two", {"three": 3}, [4]])

    def nested(doc: pycrdt.Doc[Any]) -> None:
        m = doc.get("m", type=pycrdt.Map)
        m["arr"] = pycrdt.Array([pycrdt.Map({"inner": pycrdt.Map({"x": 1})})])
        m["arr"][0]["inner"]["y"] = pycrdt.Text("deep")

    def xml(doc: pycrdt.Doc[Any]) -> None:
        f = doc.get("x", type=pycrdt.XmlFragment)
        el = f.children.append(pycrdt.XmlElement("p", {"class": "c"}))
        t = el.children.append(pycrdt.XmlText("hi"))
        t.format(0, 1, {"bold": True})
        t.insert_embed(1, {"img": "a.png"})

    def large(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t += "x" * 200_000
        t += "é😀" * 5_000

    def unicode(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t += "a😀b𝄞c"
        del t[1:3]
        t.insert(1, "🎉")

    def deletions(doc: pycrdt.Doc[Any]) -> None:
        a = doc.get("a", type=pycrdt.Array)
        a.append(pycrdt.Map({"k": pycrdt.Text("gone")}))
        a.append("keep")
        del a[0]
        t = doc.get("t", type=pycrdt.Text)
        t += "abcdef"
        del t[0:6]

    for name, fn in [
        ("text", text),
        ("any_values", any_values),
        ("nested", nested),
        ("xml", xml),
        ("large", large),
        ("unicode", unicode),
        ("deletions", deletions),
    ]:
        record(name, fn)
    return out


PY_UPDATES = _pycrdt_updates()


@pytest.mark.parametrize("name", sorted(PY_UPDATES))
def test_pycrdt_updates_accepted_with_exact_clocks(name: str) -> None:
    *ups, full, state = PY_UPDATES[name]
    for u in ups:
        scan_update(u, L)
    info = scan_update(full, L)
    sv = scan_state_vector(state, L)
    # clock accounting (UTF-16 units, Any counts) must match yrs exactly
    assert {c: end for c, (_, end) in info.clients.items()} == sv


@pytest.mark.parametrize("name", sorted(YJS_VECTORS))
def test_yjs_vectors_accepted_and_applied(name: str) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for h in YJS_VECTORS[name]:
        u = bytes.fromhex(h)
        scan_update(u, L)
        if name != "wire_examples":
            doc.apply_update(u)


def test_yjs_full_state_clock_accounting() -> None:
    info = scan_update(bytes.fromhex(YJS_VECTORS["text_full"][0]), L)
    # "bc" + "héllo 😀 wörld" (13 code points, one astral -> 14 units) after "a"
    assert info.clients[1] == (0, 1 + 2 + 14)
    assert info.deletes == ((1, 0, 1),)


def test_zero_length_string_from_pycrdt_is_accepted() -> None:
    u = update((1, 0, [root_item("t", s(""), 4), origin_item(s("a"), 4, origin=(1, 0))]))
    # the second item has origin (1, 0) which the empty item does not cover; only scan here
    info = scan_update(u, L)
    assert [st.length for st in info.structs] == [0, 1]


def test_empty_update() -> None:
    assert scan_update(b"\x00\x00", L).is_empty
    assert not scan_update(bytes.fromhex("01020c0001010161010002010c010003"), L).is_empty


# --- varints -------------------------------------------------------------------------------


@pytest.mark.timing
def test_varint_run_of_ff_rejected_fast() -> None:
    for data in (b"\xff" * 400_000, b"\x01\x01\x01\x00\x08" + b"\xff" * 400_000):
        t0 = time.perf_counter()
        assert rejects(data) == "varint longer than 8 bytes"
        assert time.perf_counter() - t0 < 1.0


# --- rejection rules, one crafted input each -----------------------------------------------

GOOD_ITEM = root_item("t", s("a"), 4)


def one(item: bytes) -> bytes:
    return update((1, 0, [item]))


def anys(*values: bytes) -> bytes:
    return one(root_item("m", any_item(*values), 8))


NAN64 = struct.pack(">d", float("nan"))
INF32 = struct.pack(">f", float("inf"))
MIB1 = vu(2**20 + 1) + b"\x00" * (2**20 + 1)


def rejects(data: bytes, limits: Limits = L) -> str:
    with pytest.raises(MalformedInput) as exc:
        scan_update(data, limits)
    return exc.value.reason


def test_good_item_baseline() -> None:
    scan_update(update((1, 0, [GOOD_ITEM])), L)


# (input, test id, why it is refused): the exact MalformedInput.reason, the text that reaches the
# logs and the close reason, so an input refused by an earlier check than the one named fails.
REJECTED: list[tuple[bytes, str, str]] = [
    (one(GOOD_ITEM) + b"\x00", "trailing", "trailing bytes after delete set"),
    (
        update((1, 0, [GOOD_ITEM]), (1, 1, [GOOD_ITEM])),
        "duplicate client in structs",
        "duplicate client in structs",
    ),
    (
        update(ds=b"\x02\x01\x01\x00\x01\x01\x01\x01\x01"),
        "duplicate client in delete set",
        "duplicate client in delete set",
    ),
    (update((2**53, 0, [GOOD_ITEM])), "client", "varint above 2**53-1"),
    (update((1, 2**31, [GOOD_ITEM])), "clock", "clock above 2**31-1"),
    (update((1, 2**31 - 1, [GOOD_ITEM])), "clock+len", "clock+len above 2**31-1"),
    (update((1, 0, [b"\x00" + vu(2**31)])), "clock+len", "clock+len above 2**31-1"),
    (one(root_item("t", vu(2**31), 1)), "Deleted len", "clock+len above 2**31-1"),
    (
        update(ds=b"\x01\x01\x01" + vu(2**31 - 1) + b"\x01"),
        "DS clock+len",
        "clock+len above 2**31-1",
    ),
    (update(ds=b"\x01\x01\x01\x00\x00"), "DS len 0", "zero-length delete range"),
    (update((1, 0, [b"\x00\x00"])), "GC len 0", "zero-length GC/Skip"),
    (update((1, 0, [b"\x0a\x00"])), "Skip len 0", "zero-length GC/Skip"),
    (update((1, 0, [b"\x80\x01"])), "GC with flags", "GC/Skip with flag bits"),
    (update((1, 0, [b"\x8a\x01"])), "Skip with flags", "GC/Skip with flag bits"),
    (one(root_item("t", s("a"), 0x14)), "bit 0x10", "content ref 20 refused"),
    (one(root_item("t", b"\x01" + s("1"), 2)), "ContentJSON", "content ref 2 refused"),
    (one(root_item("t", s("g") + b"\x76\x00", 9)), "ContentDoc", "content ref 9 refused"),
    (one(root_item("t", s("a"), 11)), "ref 11", "content ref 11 refused"),
    (one(root_item("t", b"\x05" + s("hook"), 7)), "typeRef 5", "typeRef 5 refused"),
    (one(root_item("t", b"\x07", 7)), "typeRef 7", "typeRef 7 refused"),
    (one(root_item("t", b"\x09", 7)), "typeRef 9", "typeRef 9 refused"),
    (one(root_item("t", b"\x0f", 7)), "typeRef 15", "typeRef 15 refused"),
    (one(root_item("t", b"\x80\x00", 7)), "typeRef as 2-byte vu", "typeRef 128 refused"),
    (update((1, 0, [b"\x04\x02" + s("t") + s("a")])), "parentInfo 2", "parentInfo not 0/1"),
    (one(root_item("t", s(b"\xff"), 4)), "invalid UTF-8 string", "invalid UTF-8 in string"),
    (one(root_item("t", s(b"\xed\xa0\x80"), 4)), "surrogate in UTF-8", "invalid UTF-8 in string"),
    (
        update((1, 0, [b"\x04\x01" + s(b"\xc0\xaf") + s("a")])),
        "overlong UTF-8 root name",
        "invalid UTF-8 in root name",
    ),
    (one(root_item("r" * 65, s("a"), 4)), "root name too long", "root name too long"),
    (one(root_item("m", any_item(b"\x7e"), 8, sub="k" * 257)), "parentSub", "parentSub too long"),
    (anys(b"\x76\x01" + s("__proto__") + b"\x78"), "__proto__", '"__proto__" key'),
    (anys(b"\x76\x01" + s("k" * 257) + b"\x78"), "key", "map key too long"),
    (anys(b"\x77" + s(b"\xfe")), "Any UTF-8", "invalid UTF-8 in Any string"),
    (anys(b"\x70"), "Any tag", "unknown Any tag"),
    (anys(b"\x7d" + b"\xff" * 8), "Any vi", "varint longer than 8 bytes"),
    (anys(b"\x7b" + NAN64), "NaN f64", "non-finite float in Any"),
    (anys(b"\x7c" + INF32), "Inf f32", "non-finite float in Any"),
    (anys(b"\x7a" + b"\x00" * 8), "bigint", "bigint in Any"),
    (anys(b"\x75" + vu(2**30)), "array count", "Any container count exceeds input"),
    (
        one(root_item("m", any_item(b"\x76" + vu(1000)) + b"\x00" * 1000, 8)),
        "map count",
        "Any container count exceeds input",
    ),
    (one(root_item("m", vu(10**6), 8)), "Any count", "Any count exceeds input"),
    (one(root_item("t", s('{"a":NaN}'), 5)), "NaN in embed", "NaN/Infinity in JSON"),
    (one(root_item("t", s('{"a":Infinity}'), 5)), "Infinity in embed", "NaN/Infinity in JSON"),
    (one(root_item("t", s("1e400"), 5)), "overflow in embed", "non-finite number in JSON"),
    (one(root_item("t", s('{"a":'), 5)), "bad JSON embed", "invalid JSON in embed"),
    (one(root_item("t", s('"\\ud800"'), 5)), "lone surrogate embed", "lone surrogate in embed"),
    (one(root_item("t", s('{"__proto__":1}'), 5)), "__proto__ embed", '"__proto__" key'),
    (one(root_item("t", s("[" * 33 + "]" * 33), 5)), "deep embed", "embed nested too deep"),
    (one(root_item("t", s("b") + s("NaN"), 6)), "NaN in format", "NaN/Infinity in JSON"),
    (one(root_item("t", s("b" * 65) + s("true"), 6)), "format key", "format key too long"),
    (one(root_item("t", s(" " * (64 * 1024 + 1)), 5)), "embed size", "embed too long"),
    (one(root_item("t", MIB1, 3)), "binary size", "binary too long"),
    (anys(b"\x74" + MIB1), "Any binary size", "Any binary too long"),
    (one(root_item("x", b"\x03" + s("n" * 65), 7)), "node name", "XML node name too long"),
    (b"\x01\x01\x01\x00" + GOOD_ITEM[:-1], "truncated", "truncated string"),
    (b"\x01\x01\x01\x00" + GOOD_ITEM, "missing delete set", "truncated varint"),
    (b"", "empty input", "truncated varint"),
]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(data, reason) for data, _, reason in REJECTED],
    ids=[r[1] for r in REJECTED],
)
def test_rejected(data: bytes, reason: str) -> None:
    assert rejects(data) == reason


def test_ref_4_with_astral_counts_utf16() -> None:
    info = scan_update(one(root_item("t", s("😀a"), 4)), L)
    assert info.structs[0].length == 3


def test_bigint_allowed_by_limit() -> None:
    u = update((1, 0, [root_item("m", any_item(b"\x7a" + b"\x00" * 8), 8)]))
    scan_update(u, Limits(allow_bigint=True))


@pytest.mark.timing
def test_num_clients_huge_with_few_bytes() -> None:
    t0 = time.perf_counter()
    assert "numClients" in rejects(b"\xff\xff\xff\xff\x0f\x00")
    assert "numStructs" in rejects(b"\x01\xff\xff\xff\x07\x01\x00\x00")
    assert "delete set" in rejects(b"\x00\xff\xff\xff\x07\x00")
    assert "delete range" in rejects(b"\x00\x01\x01\xff\xff\xff\x07")
    assert time.perf_counter() - t0 < 0.1


@pytest.mark.timing
def test_any_depth() -> None:
    def deep(n: int) -> bytes:
        return update((1, 0, [root_item("m", any_item(b"\x75\x01" * n + b"\x7e"), 8)]))

    scan_update(deep(50), L)
    scan_update(deep(64), L)
    rejects(deep(65))
    pycrdt.Doc().apply_update(deep(50))
    big = deep(20_000)
    assert len(big) > 40_000
    t0 = time.perf_counter()
    assert "deep" in rejects(big)
    assert time.perf_counter() - t0 < 0.1
    maps = update((1, 0, [root_item("m", any_item(b"\x76\x01\x00" * 20_000 + b"\x7e"), 8)]))
    assert "deep" in rejects(maps)


def test_element_budget() -> None:
    u = update((1, 0, [root_item("m", any_item(*[b"\x7e"] * 1000), 8)]))
    scan_update(u, Limits(max_elements=1001))
    assert "elements" in rejects(u, Limits(max_elements=999))


# --- state vectors -------------------------------------------------------------------------


def test_state_vector() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, "abc")
    assert scan_state_vector(doc.get_state(), L) == {doc.client_id: 3}
    assert scan_state_vector(b"\x00", L) == {}
    assert scan_state_vector(bytes.fromhex("0206020506"), L) == {6: 2, 5: 6}


@pytest.mark.parametrize(
    ("sv", "reason"),
    [
        # huge count, 5 bytes (1 GB in yrs, §2)
        (b"\xff\xff\xff\xff\x0f", "state vector count exceeds input"),
        (b"\x01\x01\x02\x00", "trailing bytes after state vector"),
        (b"\x02\x01\x02\x01\x03", "duplicate client in state vector"),
        (b"\x01\x01" + vu(2**31), "clock above 2**31-1"),
        (b"\x01" + vu(2**53) + b"\x01", "varint above 2**53-1"),  # client
        (b"\x01\x01", "state vector count exceeds input"),  # truncated: 1 entry, 1 byte left
        (b"\x01\x01\x80", "truncated varint"),  # truncated inside the clock
        (b"", "truncated varint"),
    ],
)
def test_state_vector_rejected(sv: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        scan_state_vector(sv, L)
    assert exc.value.reason == reason


# --- performance ---------------------------------------------------------------------------


@pytest.mark.timing
def test_scan_1mb_string_fast() -> None:
    u = update((1, 0, [root_item("t", s("x" * (1 << 20)), 4)]))
    u2 = update((1, 0, [root_item("t", s("é😀" * (1 << 18)), 4)]))
    for data in (u, u2):
        scan_update(data, L)
        t0 = time.perf_counter()
        scan_update(data, L)
        assert time.perf_counter() - t0 < 0.05


@pytest.mark.timing
def test_scan_1mb_dense_any_under_1s() -> None:
    n = 500_000
    u = update((1, 0, [root_item("m", any_item(*[b"\x7d\x01"] * n), 8)]))
    assert len(u) > 1_000_000
    t0 = time.perf_counter()
    info = scan_update(u, Limits(max_elements=10**6))
    assert time.perf_counter() - t0 < 1.0
    assert info.structs[0].length == n
    t0 = time.perf_counter()
    rejects(u)  # default element budget stops it early
    assert time.perf_counter() - t0 < 1.0


# --- mutation fuzzing ----------------------------------------------------------------------


def _corpus() -> list[bytes]:
    out = [bytes.fromhex(h) for hs in YJS_VECTORS.values() for h in hs]
    for name, ups in PY_UPDATES.items():
        if name != "large":
            out.extend(ups[:-1])
    out.append(anys(b"\x75\x01" * 10 + b"\x7e"))
    out.append(one(root_item("r", MAP_TYPE, 7, sub="k")))
    return out


@pytest.mark.timing
def test_mutations_never_reach_a_panic() -> None:
    rng = random.Random(20261127)
    corpus = _corpus()
    accepted = tolerated = 0
    deadline = time.perf_counter() + 25
    for i in range(20_000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(5)
            if op == 0 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif op == 1 and data:
                pos = rng.randrange(len(data))
                data[pos] = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
            elif op == 2:
                del data[rng.randrange(len(data) + 1) :]
            elif op == 3:
                pos = rng.randrange(len(data) + 1)
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif data:
                pos = rng.randrange(len(data))
                del data[pos : pos + rng.randint(1, 4)]
        blob = bytes(data)
        try:
            info = scan_update(blob, L)
        except MalformedInput:
            continue
        accepted += 1
        with contextlib.suppress(MalformedInput):  # the index refuses only with MalformedInput
            DocIndex(L).check(info)
        try:
            pycrdt.Doc().apply_update(blob)
        except (RuntimeError, ValueError):
            tolerated += 1
        except BaseException as exc:  # PanicException is a BaseException
            pytest.fail(f"pycrdt raised {type(exc).__name__} on accepted input {blob.hex()}")
        if i % 1000 == 0:
            assert time.perf_counter() < deadline
    print(f"accepted {accepted} mutants, pycrdt refused {tolerated} of them")
    assert accepted > 100
