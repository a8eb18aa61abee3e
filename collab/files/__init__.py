"""Uploaded files: names, types, previews, the upload body's parser, the collector, and the
service the API calls (docs/files.md).

    names.py      sanitise_name, content_disposition
    sniff.py      the type from the bytes (puremagic), and which types are shown inline
    multipart.py  UploadParser: multipart/form-data, streamed, sans-IO
    preview.py    bounded thumbnails with Pillow (blocking: run in a worker thread)
    gc.py         collect: unreferenced bytes older than an hour go
    service.py    FileService: upload, read, preview, delete, collect

The bytes live in ``collab.store.blobs``; the per-room references in ``collab.meta.files``.
"""

from __future__ import annotations

from collab.files.gc import GRACE, Collected
from collab.files.multipart import UploadParser
from collab.files.names import content_disposition, sanitise_name
from collab.files.preview import Preview
from collab.files.service import FileService
from collab.files.sniff import is_inline, sniff

__all__ = [
    "GRACE",
    "Collected",
    "FileService",
    "Preview",
    "UploadParser",
    "content_disposition",
    "is_inline",
    "sanitise_name",
    "sniff",
]
