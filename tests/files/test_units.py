"""The small pieces of uploads, in process: names, types, the multipart parser, previews."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from collab.errors import BadRequest
from collab.files import UploadParser, content_disposition, is_inline, sanitise_name, sniff
from collab.files.multipart import MAX_OTHER_BYTES
from collab.files.preview import SIZE, make_preview
from collab.files.sniff import OCTET_STREAM, TEXT


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "file"),
        ("report.pdf", "report.pdf"),
        ("a/b/c.txt", "c.txt"),
        ("a\\b\\", "file"),
        ("  spaced   out\tname  .txt ", "spaced out name .txt"),
        ("trailing dots...", "trailing dots"),
        ("...", "file"),
        (".bashrc", ".bashrc"),
        ("zero\u200bwidth", "zerowidth"),
        ("line\u2028sep\x1b", "line sep"),
        ("cafe\u0301.txt", "café.txt"),  # NFC
        ("a" * 250, "a" * 200),
        ("b" * 250 + ".verylongextensionname", "b" * 200),  # not an extension: cut as text
        ("😀" * 100 + ".png", "😀" * 62 + ".png"),  # 255 UTF-8 bytes at most
    ],
)
def test_sanitise_name(raw: str | None, expected: str) -> None:
    assert sanitise_name(raw) == expected
    assert len(expected.encode()) <= 255


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    value = content_disposition("attachment", 'naïve "quote"; 100%.txt')
    assert value.startswith('attachment; filename="na_ve _quote__ 100_.txt"; filename*=UTF-8')
    assert value.endswith("na%C3%AFve%20%22quote%22%3B%20100%25.txt")


def image(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"", OCTET_STREAM),
        (b"plain text\n", TEXT),
        ("texte accentué".encode() + "é".encode()[:1], TEXT),  # a character cut at the end
        (b"\x00\x01\x02binary", OCTET_STREAM),
        (b"nul\x00inside", OCTET_STREAM),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"<!DOCTYPE html><html></html>", "text/html"),
    ],
)
def test_sniff(head: bytes, mime: str) -> None:
    assert sniff(head) == mime


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_raster_images_are_the_inline_ones(fmt: str) -> None:
    mime = sniff(image(fmt))
    assert mime == f"image/{fmt.lower()}" and is_inline(mime)
    assert not is_inline("image/svg+xml") and not is_inline("text/html")


BODY = (
    b"--B\r\n"
    b'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n--B\r\n'
    b'Content-Disposition: form-data; name="file"; filename="x.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
    b"file bytes\r\nwith a CRLF and --B-lookalike\r\n--B--\r\nepilogue"
)


@pytest.mark.parametrize("step", [1, 3, 7, 64, len(BODY)])
def test_the_parser_yields_only_the_file_whatever_the_chunking(step: int) -> None:
    parser = UploadParser("multipart/form-data; boundary=B")
    got = b"".join(
        piece for i in range(0, len(BODY), step) for piece in parser.feed(BODY[i : i + step])
    )
    parser.finish()
    assert got == b"file bytes\r\nwith a CRLF and --B-lookalike" and parser.filename == "x.txt"


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "multipart/form-data", "multipart/form-data; boundary=" + "x" * 300],
)
def test_the_parser_needs_multipart_with_a_boundary(content_type: str | None) -> None:
    with pytest.raises(BadRequest):
        UploadParser(content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"--B--\r\n",  # no file field
        BODY[: BODY.index(b"file bytes") + 4],  # cut in the file
        BODY.replace(b"--B--", b"--B"),  # no closing boundary
        b"--B\r\n" + b"x" * 10_000,  # no headers
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
        + b"v" * (MAX_OTHER_BYTES + 1)
        + b"\r\n--B--\r\n",
    ],
)
def test_the_parser_refuses_what_is_not_one_whole_file(body: bytes) -> None:
    parser = UploadParser("multipart/form-data; boundary=B")
    with pytest.raises(BadRequest):
        parser.feed(body)
        parser.finish()


def test_previews(tmp_path: Path) -> None:
    def preview_of(data: bytes) -> Image.Image | None:
        path = tmp_path / "image"
        path.write_bytes(data)
        made = make_preview(path)
        return None if made is None else Image.open(io.BytesIO(made.data))

    wide = preview_of(image("PNG", (1000, 10)))
    assert wide is not None and wide.size == (SIZE, 3) and wide.format == "JPEG"
    small = preview_of(image("GIF", (20, 20)))
    assert small is not None and small.size == (20, 20)
    clear = preview_of(image("WEBP", (10, 10), "RGBA"))
    assert clear is not None and clear.format == "PNG"
    assert preview_of(b"not an image") is None
    assert preview_of(image("BMP")) is None  # a format Pillow may not open here
    path = tmp_path / "big.png"
    path.write_bytes(image("PNG", (300, 300)))
    assert make_preview(path, max_pixels=300 * 300 - 1) is None
    assert make_preview(tmp_path / "missing") is None
    assert os.path.exists(path)
