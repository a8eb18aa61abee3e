"""collab.wire.strictjson: JSON that JSON.parse, serde_json and Python read alike (§2)."""

from __future__ import annotations

import pytest

from collab.wire import MalformedInput, canonical_json, strict_json


def test_accepted() -> None:
    assert strict_json('{"a": [1, 2.5, "x", null, true]}', 2, "state") == {
        "a": [1, 2.5, "x", None, True]
    }
    assert strict_json('"[[[[ not brackets ]]]]"', 1, "state") == "[[[[ not brackets ]]]]"
    assert strict_json('["\\"[[["]', 1, "state") == ['"[[[']  # escaped quote inside a string
    assert strict_json('"\\ud83d\\ude00"', 0, "state") == "😀"  # a surrogate pair is fine


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[1]]", "state nested too deep"),  # max depth 1
        ("[" * 100_000, "state nested too deep"),  # counted before json.loads recurses
        ("NaN", "NaN/Infinity in JSON"),
        ("[-Infinity]", "NaN/Infinity in JSON"),
        ("1e400", "non-finite number in JSON"),
        ('{"__proto__": 1}', '"__proto__" key'),
        ('"\\udc00"', "lone surrogate in state"),
        ('{"a":', "invalid JSON in state"),
        ("", "invalid JSON in state"),
        ("{} {}", "invalid JSON in state"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(MalformedInput) as exc:
        strict_json(text, 1, "state")
    assert exc.value.reason == reason


def test_canonical_json_is_compact_utf8() -> None:
    assert canonical_json({"a": [1, 2], "b": "é😀"}) == '{"a":[1,2],"b":"é😀"}'.encode()
