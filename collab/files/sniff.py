"""A file's type, from its first bytes (puremagic's signatures), never from the client.

The client's ``Content-Type`` and the name's extension are ignored: both are the uploader's
word. What the bytes do not identify is ``text/plain`` when they are UTF-8 text and
``application/octet-stream`` otherwise. Only the raster images browsers decode safely
(``INLINE``) are ever shown inline; everything else, HTML and SVG included, is served as an
attachment (``collab.api.files``).
"""

from __future__ import annotations

import puremagic

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"
# Shown inline (and previewed): raster formats with no script, no external references.
INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def sniff(head: bytes) -> str:
    """The MIME type the first bytes of a file say it is."""
    if not head:
        return OCTET_STREAM
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        matches = []
    for match in matches:  # best first
        mime = (match.mime_type or "").strip().lower()
        if "/" in mime and mime.isascii() and " " not in mime:
            return mime
    return TEXT if _is_text(head) else OCTET_STREAM


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still text.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def is_inline(mime: str) -> bool:
    return mime in INLINE
