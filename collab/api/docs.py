"""Docs: list (any member), title and kind (editors), delete (owner).

A doc's metadata (``collab.meta.DocMeta``: a title that may change, the name staying its URL,
and the kind of editor that binds it, set once) is written with ``PATCH .../docs/{doc}``,
also before the doc's first update is stored: that is how the workspace creates a doc. The
list shows stored docs and docs that only have metadata yet. Creating metadata for a new name
counts against ``max_docs_per_room`` like a new doc (``auth.policy``).

Deleting a doc closes its open sockets (4404), drops the loaded copy after its in-flight
commits, then deletes its rows, metadata and search entry: the next first update re-creates it
with a new generation, so old tabs presenting ``?gen=`` are told to reload (4409) instead of
resurrecting it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.errors import BadName, BadRequest, NotFound
from collab.meta import DOC_KINDS, DocMeta, Role
from collab.names import DocKey, is_reserved_doc, is_valid_doc_name
from collab.services import services
from collab.store.base import DocInfo

MAX_TITLE = 200


def doc_json(name: str, info: DocInfo | None, meta: DocMeta | None) -> dict[str, Any]:
    return {
        "name": name,
        "title": meta.title if meta is not None else name,
        "kind": meta.kind if meta is not None else "text",
        "generation": info.generation if info is not None else None,
        "size": info.size if info is not None else 0,
        "updated_seq": info.updated_seq if info is not None else 0,
        "updated_at": meta.updated_at if meta is not None else None,
    }


@api_endpoint
async def list_docs(request: Request) -> Response:
    """The room's documents: stored ones, and new ones that have a title and kind only."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.viewer)
    shared = services(request)
    stored = {d.name: d for d in await shared.store.list_docs(room_id)}
    metas = {m.name: m for m in await shared.meta.list_doc_meta(room_id)}
    names = sorted(n for n in stored.keys() | metas.keys() if principal.allows(room_id, n))
    page, cursor = parsing.paginate(request, names, lambda n: [n])
    return parsing.page_response([doc_json(n, stored.get(n), metas.get(n)) for n in page], cursor)


def _doc_param(request: Request) -> str:
    name = str(request.path_params["doc"])
    if not is_valid_doc_name(name):
        raise BadName("bad document name")
    return name


def _title_and_kind(body: dict[str, Any]) -> tuple[str | None, str | None]:
    title = parsing.get_field(body, "title", str)
    kind = parsing.get_field(body, "kind", str)
    if title is not None:
        title = title.strip()
        if not title or len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
            raise BadRequest(f"'title' must be 1 to {MAX_TITLE} printable characters")
    if kind is not None and kind not in DOC_KINDS:
        raise BadRequest(f"'kind' must be one of {', '.join(DOC_KINDS)}")
    if title is None and kind is None:
        raise BadRequest("give a 'title', a 'kind' or both")
    return title, kind


@api_endpoint
async def update_doc(request: Request) -> Response:
    """Set a document's title (and, once, its kind); creates a new doc's metadata (201)."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    name = _doc_param(request)
    await access.require_role(request, principal, room_id, Role.editor)
    if not principal.allows(room_id, name):
        raise NotFound("no such document")
    if is_reserved_doc(name):
        raise BadRequest("reserved documents are managed by the server")
    title, kind = _title_and_kind(await parsing.read_json(request))
    shared = services(request)
    stored_docs = {d.name: d for d in await shared.store.list_docs(room_id)}
    stored = stored_docs.get(name)
    # A doc with metadata only counts against the room's cap like a stored one; counted in
    # the insert's own step (LimitReached past it).
    meta, created = await shared.meta.put_doc_meta(
        room_id,
        name,
        title=title,
        kind=kind,
        by=principal.user_id,
        max_docs=shared.settings.max_docs_per_room,
        stored=stored_docs.keys(),
    )
    action = "doc.create" if created else "doc.update"
    await access.audit(request, principal, action, room_id=room_id, target=name, title=meta.title)
    return JSONResponse(doc_json(name, stored, meta), status_code=201 if created else 200)


@api_endpoint
async def delete_doc(request: Request) -> Response:
    """Delete a document (owner); its open sockets close 4404 and its generation is renewed."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    name = _doc_param(request)
    await access.require_role(request, principal, room_id, Role.owner)
    if is_reserved_doc(name):
        raise BadRequest("reserved documents are managed by the server")
    key = DocKey(room_id, name)
    shared = services(request)
    store, registry, meta = shared.store, shared.registry, shared.meta
    loaded = registry.get(key)
    stored = {d.name: d for d in await store.list_docs(room_id)}.get(name)
    described = await meta.get_doc_meta(room_id, name)
    if stored is None and described is None and (loaded is None or not loaded.exists):
        raise NotFound("no such document")
    await registry.drop(key, 4404, "document deleted")
    await store.delete_doc(key)
    generation = stored.generation if stored else None
    registry.announce_deleted(key, generation)  # other nodes close theirs too
    await meta.delete_doc_meta(room_id, name)
    await shared.search.drop_doc(key)
    await access.audit(
        request, principal, "doc.delete", room_id=room_id, target=name, generation=generation
    )
    return Response(status_code=204)
