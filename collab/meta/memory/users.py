"""Users in memory; email matching folds ASCII case only, as SQLite's NOCASE does."""

from __future__ import annotations

import string
import uuid
from dataclasses import replace

from collab.errors import NotFound
from collab.meta.memory.base import MemoryKind
from collab.meta.users import User

_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _email_key(email: str) -> str:
    """ASCII-only case folding: what SQLite's NOCASE collation does, so both stores agree."""
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
    ) -> User:
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
        )
        users[user.id] = user
        return user

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
