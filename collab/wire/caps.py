"""The caps every scanner of ``collab.wire`` enforces (YJS-WIRE.md §2), and where they come from.

Why a separate module: the hard rules of the format (varints <= 2**53-1, clocks <= 2**31-1)
are fixed in ``lib0``; these are *policy*, a few of them server settings, and one frozen
:class:`Limits` value is handed to every scan so a room's caps are decided once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collab.settings import Settings

__all__ = ["Limits", "limits_from"]


@dataclass(frozen=True)
class Limits:
    """Caps of YJS-WIRE §2. Defaults fit Tiptap/CodeMirror/chat; rooms may tighten them."""

    max_any_depth: int = 64  # §2 "Any depth": yrs SIGSEGVs on deep Any, Yjs RangeError ~5,000
    max_type_depth: int = 64  # §4: nested-type delete/GC recursion in yrs, enforced by DocIndex
    max_json_depth: int = 32  # §2 Embed/Format: serde_json stops at 128, Python json recurses
    max_key_bytes: int = 256  # §2 parentSub and Any map keys
    max_root_name_bytes: int = 64  # §2 parentYKey: any name creates a root type
    max_roots: int = 64  # §2 per-doc root count (DocIndex)
    max_elements: int = 200_000  # §2 "Total elements": bounds pure-Python scan time per frame
    max_binary_bytes: int = 1 << 20  # §2 ContentBinary and Any Uint8Array
    max_embed_bytes: int = 64 * 1024  # §2 Embed / Format JSON text
    max_awareness_entries: int = 8  # §2 "Awareness n": a browser sends one
    max_awareness_state_bytes: int = 16 * 1024  # §2 awareness JSON is relayed raw to browsers
    max_awareness_depth: int = 16  # §2 awareness JSON depth
    # Additions (defaulted, so the agreed constructor shape still works):
    max_name_bytes: int = 64  # §2 Format key and XmlElement nodeName
    allow_bigint: bool = False  # §2 Any tag 122: JSON.stringify throws on BigInt in browsers
    allow_nonfinite_floats: bool = False  # §2 Any NaN/Inf: not representable in JSON


def limits_from(settings: Settings) -> Limits:
    """The server's caps: the two depths are settings, every other cap keeps its default.

    One shared value per pair of depths (it is frozen): every loaded doc asks for it, and a
    copy per doc was 0.2 KB of the room's memory."""
    return _limits(settings.max_any_depth, settings.max_type_depth)


@lru_cache(maxsize=16)
def _limits(max_any_depth: int, max_type_depth: int) -> Limits:
    return Limits(max_any_depth=max_any_depth, max_type_depth=max_type_depth)
