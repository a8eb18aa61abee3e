"""collab.wire.lib0: varints, strings and Any values, bounded (YJS-WIRE §1.1, §1.5)."""

from __future__ import annotations

import pytest

from collab.wire import Limits, MalformedInput, encode_varuint, read_varuint, write_varuint
from collab.wire.lib0 import read_str, scan_any, skip_varint
from tests.support.ybytes import s, vu

L = Limits()


# --- varints -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 9))
def test_read_varuint_between_other_bytes(size: int) -> None:
    value = 1 << (7 * size - 1) if size < 8 else 2**53 - 1  # takes exactly ``size`` bytes
    encoded = vu(value)
    assert len(encoded) == size
    data = b"\xff\xff" + encoded + b"\x81\x01"
    assert read_varuint(data, 2) == (value, 2 + size)
    assert read_varuint(data, 2 + size) == (129, 4 + size)
    with pytest.raises(MalformedInput, match="truncated varint"):
        read_varuint(data[: 2 + size - 1], 2)


def test_read_varuint() -> None:
    assert read_varuint(b"\x7f", 0) == (127, 1)
    assert read_varuint(b"\x00\x80\x01", 1) == (128, 3)
    assert read_varuint(vu(2**53 - 1), 0) == (2**53 - 1, 8)
    for bad, reason in [
        (b"", "truncated varint"),
        (b"\x80", "truncated varint"),
        (vu(2**53), "varint above 2**53-1"),
        (b"\xff" * 9, "varint longer than 8 bytes"),
        (b"\xff" * 8, "varint longer than 8 bytes"),  # 8 bytes there, none of them the last
        (b"\xff" * 7, "truncated varint"),
        (b"\x80\x00", "non-minimal varint"),
        (b"\xff" * 7 + b"\x7f", "varint above 2**53-1"),
    ]:
        with pytest.raises(MalformedInput) as exc:
            read_varuint(bad, 0)
        assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (2**31 - 1, "ffffffff07"),
        (2**32, "8080808010"),
        (2**53 - 1, "ffffffffffffff0f"),
    ],
)
def test_encode_varuint_round_trip(value: int, expected: str) -> None:
    # The expected bytes are written out: tests' own ``vu`` is this encoder below 2**53.
    encoded = encode_varuint(value)
    assert encoded == bytes.fromhex(expected)
    assert read_varuint(encoded, 0) == (value, len(encoded))
    out = bytearray(b"x")
    write_varuint(out, value)
    assert bytes(out) == b"x" + encoded


@pytest.mark.parametrize("value", [-1, 2**53])
def test_encode_varuint_refuses_what_no_reader_takes(value: int) -> None:
    with pytest.raises(ValueError, match="varuint out of range"):
        encode_varuint(value)


def test_skip_varint() -> None:
    # signed: the first byte holds continuation, sign (0x40) and 6 bits
    assert skip_varint(b"\x2a", 0) == 1
    assert skip_varint(b"\x41", 0) == 1  # -1
    assert skip_varint(b"\x00\x80\x01", 1) == 3  # 64
    assert skip_varint(b"\xbf" + b"\xff" * 5 + b"\x0f", 0) == 7  # 2**45 - 1
    for bad, reason in [
        (b"", "truncated varint"),
        (b"\x80", "truncated varint"),
        (b"\x80\x00", "non-minimal varint"),
        (b"\xbf" + b"\xff" * 6 + b"\x7f", "varint above 2**53-1"),
        (b"\xff" * 9, "varint longer than 8 bytes"),
        (b"\xff" * 8, "varint longer than 8 bytes"),  # 8 bytes there, none of them the last
        (b"\xff" * 7, "truncated varint"),
    ]:
        with pytest.raises(MalformedInput) as exc:
            skip_varint(bad, 0)
        assert exc.value.reason == reason


# --- strings -------------------------------------------------------------------------------


def test_read_str() -> None:
    data = s("héllo 😀") + b"rest"
    assert read_str(data, 0, 100, "name") == ("héllo 😀", len(data) - 4)
    for bad, reason in [
        (s("abc"), "name too long"),  # cap 2
        (vu(3) + b"ab", "truncated name"),
        (s(b"\xc3"), "invalid UTF-8 in name"),
        (s(b"\xed\xa0\x80"), "invalid UTF-8 in name"),  # a UTF-16 surrogate, not UTF-8
        (b"", "truncated varint"),
    ]:
        with pytest.raises(MalformedInput) as exc:
            read_str(bad, 0, 2 if reason.endswith("too long") else 100, "name")
        assert exc.value.reason == reason


# --- Any -----------------------------------------------------------------------------------


def test_scan_any_counts_values_against_the_budget() -> None:
    values = b"\x7e" + b"\x7d\x2a" + b"\x77" + s("x") + b"\x75\x02\x78\x79"  # null 42 "x" [t,f]
    assert scan_any(values, 0, 4, L, 100) == (len(values), 100 - 6)
    with pytest.raises(MalformedInput, match=r"^too many elements$"):
        scan_any(values, 0, 4, L, 5)


def test_scan_any_depth_counts_open_containers() -> None:
    one_level = Limits(max_any_depth=1)
    assert scan_any(b"\x75\x01\x7e", 0, 1, one_level, 10)[0] == 3
    with pytest.raises(MalformedInput, match=r"^Any nested too deep$"):
        scan_any(b"\x75\x01\x75\x01\x7e", 0, 1, one_level, 10)
    with pytest.raises(MalformedInput, match=r"^Any nested too deep$"):
        scan_any(b"\x76\x01" + s("k") + b"\x76\x00", 0, 1, one_level, 10)


def test_scan_any_policy_switches() -> None:
    bigint = b"\x7a" + b"\x00" * 8
    nan32 = b"\x7c\x7f\xc0\x00\x00"
    with pytest.raises(MalformedInput, match=r"^bigint in Any$"):
        scan_any(bigint, 0, 1, L, 10)
    with pytest.raises(MalformedInput, match=r"^non-finite float in Any$"):
        scan_any(nan32, 0, 1, L, 10)
    lax = Limits(allow_bigint=True, allow_nonfinite_floats=True)
    assert scan_any(bigint + nan32, 0, 2, lax, 10) == (len(bigint + nan32), 8)
