"""Users in memory; email and handle matching fold ASCII case only, as SQLite's NOCASE does
(handles are stored lower-case, so folding the one asked for is enough)."""

from __future__ import annotations

import string
import uuid
from collections.abc import Iterable
from dataclasses import replace

from collab.errors import Conflict, NotFound
from collab.meta.handles import (
    email_local_part,
    existing_user_base,
    handle_base,
    handle_candidates,
    lookup_key,
    parse_handle,
)
from collab.meta.memory.base import MemoryKind
from collab.meta.users import User, storable

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _email_key(email: str) -> str:
    """ASCII-only case folding: what SQLite's NOCASE collation does, so every store agrees."""
    return email.translate(_ASCII_FOLD)


class MemoryUsers(MemoryKind):
    async def upsert_oidc_user(
        self,
        issuer: str,
        subject: str,
        *,
        name: str,
        email: str | None,
        email_verified: bool,
        picture: str | None,
        preferred_handle: str | None = None,
    ) -> User:
        issuer, subject, name = storable(issuer), storable(subject), storable(name)
        email = None if email is None else storable(email)
        picture = None if picture is None else storable(picture)
        users = self.tables.users
        for user in users.values():
            if user.issuer == issuer and user.subject == subject:
                updated = replace(
                    user, name=name, email=email, email_verified=email_verified, picture=picture
                )
                users[user.id] = updated
                return updated
        user = User(
            id=uuid.uuid4().hex,
            issuer=issuer,
            subject=subject,
            name=name,
            email=email,
            email_verified=email_verified,
            picture=picture,
            created_at=self.clock(),
            handle=self._free_handle(handle_base(preferred_handle, email_local_part(email), name)),
        )
        users[user.id] = user
        return user

    def _free_handle(self, base: str) -> str:
        taken = {u.handle for u in self.tables.users.values()}
        return next(c for c in handle_candidates(base) if c not in taken)

    async def get_user(self, user_id: str) -> User | None:
        return self.tables.users.get(user_id)

    async def find_user_by_verified_email(self, email: str) -> User | None:
        wanted = _email_key(email)
        found = [
            u
            for u in self.tables.users.values()
            if u.email_verified and u.email is not None and _email_key(u.email) == wanted
        ]
        return min(found, key=lambda u: (u.created_at, u.id), default=None)

    async def list_users(self) -> list[User]:
        return sorted(self.tables.users.values(), key=lambda u: (u.created_at, u.id))

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        user = self.tables.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        self.tables.users[user_id] = replace(user, disabled=disabled)

    def _by_handle(self, handle: str) -> User | None:
        key = lookup_key(handle)
        if key is None:
            return None
        return next((u for u in self.tables.users.values() if u.handle == key), None)

    async def get_user_by_handle(self, handle: str) -> User | None:
        return self._by_handle(handle)

    async def get_users_by_handles(self, handles: Iterable[str]) -> dict[str, User]:
        wanted = {k for k in map(lookup_key, handles) if k is not None}
        return {u.handle: u for u in self.tables.users.values() if u.handle in wanted}

    async def set_handle(self, user_id: str, handle: str) -> User:
        wanted = parse_handle(handle)
        holder = self._by_handle(wanted)
        if holder is not None and holder.id != user_id:
            raise Conflict("this handle is taken")
        user = self.tables.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        updated = self.tables.users[user_id] = replace(user, handle=wanted)
        return updated

    async def set_private_read_markers(self, user_id: str, private: bool) -> None:
        user = self.tables.users.get(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}")
        self.tables.users[user_id] = replace(user, private_read_markers=private)

    async def get_private_read_markers(self, user_ids: Iterable[str]) -> set[str]:
        users = self.tables.users
        return {i for i in set(user_ids) if i in users and users[i].private_read_markers}

    async def get_disabled_users(self, user_ids: Iterable[str]) -> set[str]:
        users = self.tables.users
        return {i for i in set(user_ids) if i in users and users[i].disabled}

    async def assign_missing_handles(self) -> int:
        missing = sorted(
            (u for u in self.tables.users.values() if not u.handle),
            key=lambda u: (u.created_at, u.id),
        )
        for user in missing:
            handle = self._free_handle(existing_user_base(user.issuer, user.email, user.name))
            self.tables.users[user.id] = replace(user, handle=handle)
        return len(missing)
