"""A client's file name, made safe to show and to offer as a download name.

The name an upload carries is display text only: the bytes are stored under their hash, so no
name ever reaches a path. It is still shown to other members and handed back in
``Content-Disposition``, so it is cut to its last path component (``/`` and ``\\``), cleared
of control and format characters (NUL, newlines, bidirectional overrides that disguise
``exe.jpg`` as ``gpj.exe``), trimmed, and shortened to ``MAX_NAME_CHARS`` characters and
``MAX_NAME_BYTES`` UTF-8 bytes, keeping a short extension.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 200
MAX_NAME_BYTES = 255  # what most filesystems allow for one name
MAX_EXTENSION = 16
FALLBACK = "file"
# Unicode categories dropped: controls, formats (bidi overrides, zero-width), surrogates,
# private use, unassigned, line and paragraph separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SEPARATORS = re.compile(r"[/\\]")


def sanitise_name(raw: str | None) -> str:
    """The name to store and show; ``FALLBACK`` when nothing usable is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = _SEPARATORS.split(name)[-1]
    # Whitespace controls (tab, newline...) separate words: spaces; other controls go.
    name = "".join(" " if c.isspace() else c for c in name)
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED)
    name = " ".join(name.split())  # every run of spaces (of any kind) becomes one
    name = name.rstrip(" .")  # Windows drops trailing dots and spaces: "a.exe." is "a.exe"
    if not name.strip("."):
        return FALLBACK
    return _shorten(name)


def _shorten(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > MAX_EXTENSION:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    if len(name) <= MAX_NAME_CHARS and len(name.encode()) <= MAX_NAME_BYTES:
        return name
    while (
        len(stem) + len(suffix) > MAX_NAME_CHARS or len((stem + suffix).encode()) > MAX_NAME_BYTES
    ):
        stem = stem[:-1]
    return (stem.rstrip(" .") or FALLBACK) + suffix


def content_disposition(kind: str, name: str) -> str:
    """``attachment`` or ``inline`` with the name: an ASCII fallback and RFC 6266's
    ``filename*`` (UTF-8, percent-encoded) that every current browser prefers."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%;' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
