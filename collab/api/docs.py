"""Docs: list (any member), delete (owner). The per-room doc cap is ``auth.policy``'s.

Deleting a doc closes its open sockets (4404), drops the loaded copy after its in-flight
commits, then deletes its rows and its search entry: the next first update re-creates it with a new
generation, so old tabs presenting ``?gen=`` are told to reload (4409) instead of
resurrecting it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.errors import BadName, BadRequest, NotFound
from collab.meta import Role
from collab.names import DocKey, is_reserved_doc, is_valid_doc_name
from collab.services import services
from collab.store.base import DocInfo


def doc_json(info: DocInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "generation": info.generation,
        "size": info.size,
        "updated_seq": info.updated_seq,
    }


@api_endpoint
async def list_docs(request: Request) -> Response:
    """The room's stored documents."""
    principal = await access.require_principal(request)
    room_id = parsing.room_param(request)
    await access.require_role(request, principal, room_id, Role.viewer)
    stored = await services(request).store.list_docs(room_id)
    docs = [d for d in stored if principal.allows(room_id, d.name)]
    page, cursor = parsing.paginate(request, docs, lambda d: [d.name])
    return parsing.page_response([doc_json(d) for d in page], cursor)


@api_endpoint
async def delete_doc(request: Request) -> Response:
    """Delete a document (owner); its open sockets close 4404 and its generation is renewed."""
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    name = str(request.path_params["doc"])
    if not is_valid_doc_name(name):
        raise BadName("bad document name")
    await access.require_role(request, principal, room_id, Role.owner)
    if is_reserved_doc(name):
        raise BadRequest("reserved documents are managed by the server")
    key = DocKey(room_id, name)
    store, registry = services(request).store, services(request).registry
    loaded = registry.get(key)
    stored = {d.name: d for d in await store.list_docs(room_id)}.get(name)
    if stored is None and (loaded is None or not loaded.exists):
        raise NotFound("no such document")
    await registry.drop(key, 4404, "document deleted")
    await store.delete_doc(key)
    await services(request).search.indexer.drop_doc(key)
    generation = stored.generation if stored else None
    await access.audit(
        request, principal, "doc.delete", room_id=room_id, target=name, generation=generation
    )
    return Response(status_code=204)
