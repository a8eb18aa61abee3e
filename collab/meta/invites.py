"""Invites: a grant of a role in a room, used once, until it expires or ends.

An invite is redeemed either by its code (a link) or, when it is bound to an email address, by
its id by the user whose identity provider verified that address (a pending invitation, listed
at ``GET /api/v1/me/invites``). Redeeming is atomic and single use, never lowers a role the
user already has, and grants at most what the invite's creator may grant *at that moment*
(:func:`grantable`): an invite whose creator is no longer an owner grants nothing. Demoting or
removing a member voids the invites they created, in the same transaction (``Rooms.
update_member``); an owner may revoke one, its invitee decline it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal, Protocol

from collab.meta.base import Role
from collab.meta.rooms import Member

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def same_email(a: str | None, b: str) -> bool:
    """Two addresses are one when equal but for ASCII case: what SQLite's NOCASE collation
    does, so every store and check agrees (full Unicode folding would make ``straße`` and
    ``strasse`` one address)."""
    return a is not None and a.translate(_ASCII_FOLD) == b.translate(_ASCII_FOLD)


# Why an invite ended before being used.
ClosedReason = Literal["revoked", "voided", "declined", "replaced"]
Status = Literal["pending", "used", "expired", "revoked", "voided", "declined", "replaced"]


@dataclass(frozen=True)
class Invite:
    id: str
    room_id: str
    role: Role
    created_by: str
    expires_at: float
    used_by: str | None = None
    email: str | None = None  # only the user with this verified email may accept
    created_at: float = 0.0
    used_at: float | None = None
    closed_at: float | None = None
    closed_reason: ClosedReason | None = None

    def status(self, now: float) -> Status:
        if self.used_by is not None:
            return "used"
        if self.closed_reason is not None:
            return self.closed_reason
        return "expired" if self.expires_at <= now else "pending"


def grantable(creator_role: Role | None) -> Role | None:
    """The highest role an invite's creator may grant while holding ``creator_role``.

    Only owners manage members, so only a current owner's invites grant anything (and then any
    role up to owner); anyone else's grant nothing.
    """
    return Role.owner if creator_role == Role.owner else None


class Invites(Protocol):
    async def create_invite(
        self, room_id: str, role: Role, created_by: str, ttl: float, *, email: str | None = None
    ) -> tuple[Invite, str]:
        """A new invite and its secret (the link's code); errors.NotFound when there is no such
        room, errors.Conflict when it is a DM. With ``email``, the room's earlier pending
        invites for that email end (``replaced``), so an invitee sees one invitation per room."""

    async def find_invite(self, secret: str) -> Invite | None:
        """The invite of a code, whatever its state; None when unknown."""

    async def get_invite(self, invite_id: str) -> Invite | None:
        """The invite with this id, whatever its state; None when unknown."""

    async def list_invites(self, room_id: str) -> list[Invite]:
        """The room's invites (every state, until purged), oldest first."""

    async def invites_for_email(self, email: str) -> list[Invite]:
        """Pending, unexpired invites bound to ``email`` (ASCII case-insensitive) whose room
        exists, oldest first."""

    async def redeem_invite(
        self, secret: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        """Use a code, atomically: errors.NotFound when unknown, used, ended or expired, or when
        its creator may no longer grant (``creator_is_admin``: the creator is a site admin,
        who acts as an owner in every room without being a member); errors.Conflict when its
        room is a DM (which never gains a member)."""

    async def redeem_invite_by_id(
        self, invite_id: str, user_id: str, *, creator_is_admin: bool = False
    ) -> Member:
        """As :meth:`redeem_invite`, by id (an invitation bound to an email; the caller checks
        that the email is the user's)."""

    async def close_invite(self, invite_id: str, reason: ClosedReason) -> Invite:
        """End a pending invite (revoke, decline); errors.NotFound when it is not pending."""
