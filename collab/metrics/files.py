"""The metrics of uploaded files: uploads, bytes stored, refusals, and what the collector
removed (or deferred while a backup ran). ``FileService.metrics``, registered in the app's
``Metrics.registry``; labels are bounded (a refusal's reason is one of ``FILE_REFUSALS``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from collab.errors import (
    BadRequest,
    CollabError,
    FileTooLarge,
    Forbidden,
    NotFound,
    Quota,
    TooManyRequests,
    Unauthorized,
)

FILE_REFUSALS = ("too_large", "quota", "rate", "bad_request", "denied", "other")


def refusal_reason(exc: BaseException) -> str:
    """The ``reason`` label of a refused upload."""
    if isinstance(exc, FileTooLarge):
        return "too_large"
    if isinstance(exc, CollabError) and exc.quota is Quota.room_files:
        return "quota"
    if isinstance(exc, TooManyRequests):
        return "rate"
    if isinstance(exc, BadRequest):
        return "bad_request"
    if isinstance(exc, Forbidden | NotFound | Unauthorized):
        return "denied"
    return "other"


class FileMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.uploads = Counter("collab_file_uploads", "Files uploaded and stored.", registry=r)
        self.upload_bytes = Counter(
            "collab_file_upload_bytes",
            "Bytes of the files uploaded (a duplicate counts again, though stored once).",
            registry=r,
        )
        self.stored_bytes = Gauge(
            "collab_file_stored_bytes",
            "Bytes of distinct files in the blob store (from the references at start, then "
            "moved by uploads of new bytes and by the collector).",
            registry=r,
        )
        self.collected_bytes = Counter(
            "collab_file_collected_bytes", "Bytes the collector removed.", registry=r
        )
        self.collection_deferred = Counter(
            "collab_file_collections_deferred",
            "Collector passes that removed no file because a backup (or another collector's "
            "pass) held the blob directory's lock.",
            registry=r,
        )
        refused = Counter(
            "collab_file_uploads_refused",
            "Uploads refused, by reason: too_large (max_upload_size, while streaming), quota "
            "(max_room_files_bytes), rate, bad_request, denied (credentials, role, membership).",
            ["reason"],
            registry=r,
        )
        self._refused = {reason: refused.labels(reason) for reason in FILE_REFUSALS}

    def uploaded(self, size: int) -> None:
        self.uploads.inc()
        self.upload_bytes.inc(size)

    def stored(self, size: int) -> None:
        """New bytes entered the blob store (not a duplicate)."""
        self.stored_bytes.inc(size)

    def collected(self, size: int) -> None:
        self.collected_bytes.inc(size)
        self.stored_bytes.dec(size)

    def refused(self, exc: BaseException) -> None:
        self._refused[refusal_reason(exc)].inc()
