"""What a principal may do in a room: one function that every door (socket, API) goes through.

Roles come from membership (site admins act as owners; the dev user is at least an editor),
capped by a token's ceiling and scope. A room that does not exist is created on the first join
of a signed-in user while auto-create is on (the joiner becomes its owner), within the per-user
cap; otherwise it is NotFound. A room gains a doc only within ``max_docs_per_room``, its docs
stored and described. Refusals at a cap are ``LimitReached`` carrying their ``Quota``.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab.auth.principal import Principal
from collab.errors import Conflict, Forbidden, LimitReached, NotFound, Quota
from collab.meta import MetaStore, Role
from collab.names import DocKey, is_reserved_doc
from collab.settings import Settings
from collab.store.base import DocumentStore

# Credentials that stand for the user themself (not a narrowed token) may create rooms.
_MAY_CREATE = {"session", "dev", "api_token"}


@dataclass(frozen=True)
class Access:
    role: Role
    can_write: bool  # may change this doc's content through Yjs updates


def doc_access(role: Role, doc: str) -> Access:
    return Access(role, role.can_write_docs and not is_reserved_doc(doc))


async def room_role(
    meta: MetaStore,
    settings: Settings,
    principal: Principal,
    room_id: str,
    *,
    create: bool = False,
) -> Role:
    """The principal's effective role in ``room_id``; Forbidden / NotFound otherwise."""
    if not principal.allows(room_id):
        raise Forbidden("token not valid for this room")
    room = await meta.get_room(room_id)
    if room is None:
        if not (create and settings.auto_create_rooms and principal.via in _MAY_CREATE):
            raise NotFound("no such room")
        try:  # LimitReached past the cap, counted in the insert's own step
            await meta.create_room(
                room_id, room_id, principal.user_id, max_rooms=settings.max_rooms_per_user
            )
        except Conflict:
            pass  # created by someone else at the same moment: fall through to membership
    member = await meta.get_member(room_id, principal.user_id)
    role = effective_role(principal, member.role if member is not None else None)
    if role is None:
        raise Forbidden("not a member of this room")
    return role


def effective_role(principal: Principal, member_role: Role | None) -> Role | None:
    """Membership, raised for admins and the dev user, capped by the credential's ceiling."""
    role = member_role
    if principal.is_admin:
        role = Role.owner
    if principal.via == "dev" and (role is None or role < Role.editor):
        role = Role.editor
    return None if role is None else principal.cap(role)


async def may_create_doc(
    store: DocumentStore, meta: MetaStore, settings: Settings, key: DocKey
) -> bool:
    """Whether the room may gain ``key``'s doc (``max_docs_per_room``): it is described already
    (counted), or the room's docs, stored or described (metadata only, as the API counts
    them), are fewer than the cap.

    The socket path asks before a doc's first update is stored. Docs loaded but not yet stored
    do not count. The first update's commit counts again, in the step that creates the doc
    (``DocumentStore.append``'s ``max_docs``): sockets joined at once all pass this check.
    """
    names = {doc.name for doc in await store.list_docs(key.room)}
    names |= {doc.name for doc in await meta.list_doc_meta(key.room)}
    return key.doc in names or len(names) < settings.max_docs_per_room


async def check_doc_quota(
    store: DocumentStore, meta: MetaStore, settings: Settings, key: DocKey
) -> None:
    """LimitReached (docs_per_room) unless the room may gain ``key``'s doc."""
    if not await may_create_doc(store, meta, settings, key):
        raise LimitReached(Quota.docs_per_room, "document limit of this room reached")
