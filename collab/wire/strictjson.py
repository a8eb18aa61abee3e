"""Strict, bounded JSON: the text JSON.parse, serde_json and Python all read alike (YJS-WIRE §2).

JSON reaches the server inside Yjs updates (Embed and Format content) and as awareness states,
which are relayed to browsers. Python's ``json`` accepts more than the other two readers
(NaN, Infinity, lone surrogate escapes) and recurses on nesting, so every such text goes
through :func:`strict_json` here, and what collab relays is the one spelling of
:func:`canonical_json`.
"""

from __future__ import annotations

import json
import math
import re

from collab.wire.caps import Limits
from collab.wire.lib0 import MalformedInput, read_str

__all__ = ["canonical_json", "read_json", "strict_json"]

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _reject_constant(name: str) -> object:
    raise MalformedInput("NaN/Infinity in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedInput("non-finite number in JSON")
    return value


def _no_proto(pairs: list[tuple[str, object]]) -> dict[str, object]:
    for key, _ in pairs:
        if key == "__proto__":
            raise MalformedInput('"__proto__" key')
    return dict(pairs)


def strict_json(text: str, max_depth: int, what: str) -> object:
    """Parse JSON that JSON.parse, serde_json and Python all read alike (§2 Embed/awareness).

    Depth is measured iteratively *before* ``json.loads`` (Python's parser recurses, §2); the
    pre-pass strips string literals, so it agrees with the parser on every bracket the parser
    reaches before it fails. NaN/Infinity, overflowing numbers, lone surrogate escapes and
    ``"__proto__"`` keys are refused.
    """
    depth = 0
    for ch in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if ch == "[" or ch == "{":
            depth += 1
            if depth > max_depth:
                raise MalformedInput(f"{what} nested too deep")
        else:
            depth -= 1
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_proto,
        )
    except MalformedInput:
        raise
    except (ValueError, RecursionError):
        raise MalformedInput(f"invalid JSON in {what}") from None
    if "\\u" in text:
        try:  # lone surrogate escapes: serde_json refuses them, JSON.parse keeps them
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedInput(f"lone surrogate in {what}") from None
    return value


def read_json(data: bytes, pos: int, limits: Limits, what: str) -> int:
    """Check a lib0 ``str`` holding JSON (Embed, Format value) at ``pos``; return the new pos."""
    text, pos = read_str(data, pos, limits.max_embed_bytes, what)
    strict_json(text, limits.max_json_depth, what)
    return pos


def canonical_json(value: object) -> bytes:
    """The one spelling collab relays: compact separators, UTF-8, no ASCII escaping."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
