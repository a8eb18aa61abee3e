"""The upload body, parsed as it streams in: ``multipart/form-data`` with one file field.

Sans-IO over python-multipart's streaming ``MultipartParser``: ``feed`` a chunk of the body,
get back the file field's bytes in it, and write them wherever they go; nothing is buffered
here beyond one chunk. Starlette's ``request.form()`` is not used: it spools each file to its
own temporary file (in memory up to 1 MiB) and applies no size cap to file parts, so the cap,
the hash and the final location would each need another pass over the bytes.

What the parser accepts is bounded: at most ``MAX_PARTS`` parts of at most ``MAX_HEADERS``
headers of ``MAX_HEADER_BYTES`` each, ``MAX_OTHER_BYTES`` in the parts that are not the file
and after the closing boundary (both ignored), and exactly one part named ``file``. Anything
else is a ``BadRequest``.
"""

from __future__ import annotations

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from collab.errors import BadRequest

FIELD = "file"
MAX_PARTS = 8
MAX_HEADERS = 8
MAX_HEADER_BYTES = 4 * 1024
MAX_OTHER_BYTES = 16 * 1024
# The most a body may hold besides the file's bytes: boundaries, part headers, other fields
# (about 275 KiB), so a declared length past max_upload_size plus this is refused unread.
MAX_OVERHEAD = MAX_OTHER_BYTES + MAX_PARTS * (MAX_HEADERS * (MAX_HEADER_BYTES + 4) + 256)


class UploadParser:
    def __init__(self, content_type: str | None, field: str = FIELD) -> None:
        kind, params = parse_options_header(content_type or "")
        if kind != b"multipart/form-data":
            raise BadRequest(f"send the file as multipart/form-data, in a field named {field!r}")
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("multipart body without a boundary")
        self.field = field
        self.filename: str | None = None  # the file part's filename parameter, raw
        self.file_done = False  # the file part ended
        self.ended = False  # the closing boundary was seen
        self._pending: list[bytes] = []
        self._in_file = False
        self._parts = 0
        self._other_bytes = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_data,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
                max_header_count=MAX_HEADERS,
                max_header_size=MAX_HEADER_BYTES,
            )
        except FormParserError:
            raise BadRequest("bad multipart boundary") from None

    def feed(self, chunk: bytes) -> list[bytes]:
        """The file field's bytes in this chunk of the body, in order. What follows the
        closing boundary (an epilogue, ignored) counts as other fields' bytes: a chunked body,
        whose length no header bounds, cannot run on after its end."""
        if self.ended:
            self._count_other(len(chunk))
        try:
            self._parser.write(chunk)
        except FormParserError:
            raise BadRequest("malformed multipart body") from None
        found, self._pending = self._pending, []
        return found

    def finish(self) -> None:
        """The body ended: BadRequest unless it held a whole file field and its closing
        boundary (a body cut short is no upload)."""
        if self.filename is None and not self.file_done:
            raise BadRequest(f"no {self.field!r} field in the multipart body")
        if not (self.file_done and self.ended):
            raise BadRequest("incomplete multipart body")

    # -- python-multipart's callbacks --------------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise BadRequest(f"more than {MAX_PARTS} parts in the multipart body")
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != self.field:
            return
        if self.filename is not None:
            raise BadRequest(f"more than one {self.field!r} field")
        self.filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])
            return
        self._count_other(end - start)

    def _count_other(self, n: int) -> None:
        self._other_bytes += n
        if self._other_bytes > MAX_OTHER_BYTES:
            raise BadRequest(f"more than {MAX_OTHER_BYTES} bytes in fields other than the file")

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self.file_done = True

    def _end(self) -> None:
        self.ended = True
