"""Image previews: a bounded thumbnail of a raster image, or None.

Pillow decodes hostile input here, so everything is bounded before a pixel is decoded: only
the ``FORMATS`` Pillow is allowed to open (not its dozens of other plugins), the header's
width x height against ``MAX_PIXELS`` (a decompression bomb declares billions of pixels in a
few KiB: refused from its header, never inflated), and the thumbnail at most ``SIZE`` pixels a
side. Any failure to decode (a truncated JPEG, a corrupt PNG, a bomb) is no preview: the
caller answers 404 and the server carries on. ``make_preview`` is blocking: callers run it in
a worker thread, a few at a time (``collab.files.service``).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

log = logging.getLogger("collab.files")

SIZE = 320  # the longest side of a thumbnail, in pixels
MAX_PIXELS = 40_000_000  # width x height of the largest image previewed (a 40 MP photo)
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


@dataclass(frozen=True)
class Preview:
    data: bytes
    mime: str  # image/png (images with transparency) or image/jpeg


def make_preview(path: Path, max_pixels: int = MAX_PIXELS) -> Preview | None:
    """A thumbnail of the image at ``path``, or None (not an image we preview, too many
    pixels, or undecodable)."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) before it refuses; we refuse first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return _thumbnail(path, max_pixels)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        log.info("no preview: %s", type(exc).__name__)
        return None


def _thumbnail(path: Path, max_pixels: int) -> Preview | None:
    with Image.open(path, formats=FORMATS) as image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > max_pixels:
            log.info("no preview: %dx%d pixels", width, height)
            return None
        image.draft("RGB", (SIZE, SIZE))  # JPEG: decode at a reduced scale, cheaply
        image.thumbnail((SIZE, SIZE))  # decodes (the first frame of an animation)
        alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        out = io.BytesIO()
        if alpha:
            image.convert("RGBA").save(out, "PNG", optimize=True)
            return Preview(out.getvalue(), "image/png")
        image.convert("RGB").save(out, "JPEG", quality=80)
        return Preview(out.getvalue(), "image/jpeg")
