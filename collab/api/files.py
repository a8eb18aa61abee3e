"""A room's files: upload (commenters and above), list, download, preview, delete.

Every route starts like every room route: a caller who is not a member gets the same 404 as
for a missing room, whether the file exists or not, and a member asking for a file id the room
does not reference gets 404 too (another room's file is no file here). An upload streams: the
multipart body is parsed as it arrives (``collab.files.UploadParser``), the file's bytes go to
a temporary file, hashed and capped at ``max_upload_size`` on the way (413 ``too_large``, the
partial file removed, the connection closed), within the room's ``max_room_files_bytes``. A
body that stops arriving (no byte for ``body_timeout`` seconds) is refused the same way (408
``body_timeout``), so a trickled upload holds no connection or temporary file for long.

Downloads carry the hash as ETag, answer Range requests (206: resume, media seeking) and
conditional ones (304), and are never rendered as active content: ``nosniff``, a sandboxing
CSP, and ``Content-Disposition: attachment`` for everything but the raster images browsers
decode safely (HTML and SVG included: downloaded, never shown). docs/files.md has the rest.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.errors import BadRequest, FileTooLarge, Forbidden, NotFound, error_response
from collab.files import UploadParser, content_disposition, is_inline
from collab.files.multipart import MAX_OVERHEAD
from collab.meta import FileRecord, Role
from collab.meta.files import room_quota_refusal
from collab.services import Services, services

# On every file response: never sniffed into another type, never run as a page of this origin,
# never embedded by another site.
SAFE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "private, no-cache",  # revalidated (304) each time: access may change
}
MAX_FILE_ID = 64


def file_json(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "room": record.room_id,
        "name": record.name,
        "size": record.size,
        "mime": record.mime,
        "sha256": record.sha256,
        "uploader": record.uploader,
        "created_at": record.created_at,
    }


async def _member(request: Request, minimum: Role = Role.viewer) -> tuple[Principal, str, Role]:
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    role = await access.require_role(request, principal, room_id, minimum)
    return principal, room_id, role


async def _readable(request: Request) -> FileRecord:
    """The file the path names, for a member of its room; 404 otherwise."""
    _, room_id, _ = await _member(request)
    return await _file(request, room_id)


async def _file(request: Request, room_id: str) -> FileRecord:
    file_id = str(request.path_params["file"])
    if not (0 < len(file_id) <= MAX_FILE_ID and file_id.isascii() and file_id.isalnum()):
        raise NotFound("no such file")
    return await services(request).files.get(room_id, file_id)


# -- upload ----------------------------------------------------------------------------


async def upload_file(request: Request) -> Response:
    """Upload a file into the room (multipart/form-data, field ``file``); commenters and up."""
    shared = services(request)
    try:
        principal, room_id, _ = await _member(request, Role.commenter)
        record = await _receive(request, shared, room_id, principal)
        size = record.size
        await access.audit(
            request, principal, "file.upload", room_id=room_id, target=record.id, size=size
        )
    except ClientDisconnect:
        return Response(status_code=400)  # nobody left to answer; the partial file is gone
    except Exception as exc:
        shared.files.metrics.refused(exc)
        shared.metrics.refusal(exc)
        response = error_response(exc)
        # Whatever of the body is unread stays on the connection: close it instead of reading.
        response.headers["connection"] = "close"
        return response
    return JSONResponse(file_json(record), status_code=201)


async def _receive(
    request: Request, shared: Services, room_id: str, principal: Principal
) -> FileRecord:
    """Stream the body into an upload and store it; the partial file goes on any failure."""
    parser = UploadParser(request.headers.get("content-type"))
    space = await shared.files.room_space(room_id)
    declared = _declared_length(request)
    if declared is not None and declared > shared.settings.max_upload_size + MAX_OVERHEAD:
        raise FileTooLarge(f"file larger than {shared.settings.max_upload_size} bytes")
    if declared is not None and declared > space + MAX_OVERHEAD:
        raise room_quota_refusal(shared.settings.max_room_files_bytes)
    upload = shared.files.begin()
    try:
        async for chunk in parsing.body_chunks(request):  # 408 when it stops arriving
            for piece in parser.feed(chunk):
                await upload.write(piece)
            if upload.size > space:
                raise room_quota_refusal(shared.settings.max_room_files_bytes)
        parser.finish()
        return await shared.files.store(room_id, principal.user_id, upload, parser.filename)
    finally:
        upload.discard()  # a no-op once stored: the temporary file became the blob


def _declared_length(request: Request) -> int | None:
    length = request.headers.get("content-length")
    if length is None:
        return None
    if not (length.isascii() and length.isdigit()) or len(length) > 18:
        raise BadRequest("bad Content-Length")
    return int(length)


# -- reads -----------------------------------------------------------------------------


@api_endpoint
async def list_files(request: Request) -> Response:
    """The room's files, oldest first."""
    _, room_id, _ = await _member(request)
    found = await services(request).meta.list_files(room_id)
    page, cursor = parsing.paginate(request, found, lambda f: [f.created_at, f.id])
    return parsing.page_response([file_json(f) for f in page], cursor)


@api_endpoint
async def download_file(request: Request) -> Response:
    """A file's bytes (Range requests resume; raster images inline, the rest attachments)."""
    record = await _readable(request)
    blob = await services(request).files.blob(record)
    etag = f'"{record.sha256}"'
    kind = "inline" if is_inline(record.mime) else "attachment"
    headers = {
        **SAFE_HEADERS,
        "etag": etag,
        "last-modified": formatdate(record.created_at, usegmt=True),
        "content-disposition": content_disposition(kind, record.name),
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(blob.path, headers=headers, media_type=record.mime)


@api_endpoint
async def preview_file(request: Request) -> Response:
    """A thumbnail of an image file (at most 320 px a side); 404 when there is none."""
    record = await _readable(request)
    preview = await services(request).files.preview(record)
    if preview is None:
        raise NotFound("no preview of this file")
    etag = f'"{record.sha256}-preview"'
    headers = {**SAFE_HEADERS, "etag": etag, "content-disposition": "inline"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(preview.data, media_type=preview.mime, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


# -- delete ----------------------------------------------------------------------------


@api_endpoint
async def delete_file(request: Request) -> Response:
    """Remove a file from the room (its uploader, or an owner); its bytes are collected
    once no room references them."""
    principal, room_id, role = await _member(request)
    record = await _file(request, room_id)
    own = record.uploader == principal.user_id and role >= Role.commenter
    if not own and role < Role.owner:
        raise Forbidden("only the uploader or an owner may delete a file")
    await services(request).files.delete(room_id, record.id)
    await access.audit(
        request, principal, "file.delete", room_id=room_id, target=record.id, moderated=not own
    )
    return Response(status_code=204)
