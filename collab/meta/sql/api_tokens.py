"""Personal API tokens: the row keeps the secret's digest."""

from __future__ import annotations

import uuid
from typing import Any

from collab.meta.api_tokens import ApiToken
from collab.meta.base import digest, new_secret
from collab.meta.sql.base import SqlKind, Tx, as_row, insert

_TOKEN = "id, user_id, name, created_at, revoked, last_used_at"


def _token(row: tuple[Any, ...]) -> ApiToken:
    return ApiToken(row[0], row[1], row[2], row[3], bool(row[4]), row[5])


class SqlApiTokens(SqlKind):
    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        secret = new_secret()

        def _create(db: Tx) -> ApiToken:
            token = ApiToken(uuid.uuid4().hex, user_id, name, created_at=self.clock())
            insert(db, "api_tokens", as_row(token, digest=digest(secret)))
            return token

        return await self._write(_create), secret

    async def find_api_token(self, secret: str) -> ApiToken | None:
        key = digest(secret)

        def _find(db: Tx) -> ApiToken | None:
            row = db.execute(
                f"UPDATE api_tokens SET last_used_at=? WHERE digest=? AND NOT revoked"
                f" RETURNING {_TOKEN}",
                (self.clock(), key),
            ).fetchone()
            return _token(row) if row else None

        # Every request of a busy client: its writes queue on the token instead of retrying.
        return await self._write(_find, serial=f"api-token:{key}")

    async def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        rows = await self._read(
            f"SELECT {_TOKEN} FROM api_tokens WHERE user_id=? ORDER BY created_at, id", (user_id,)
        )
        return [_token(row) for row in rows]

    async def revoke_api_token(self, token_id: str, user_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "UPDATE api_tokens SET revoked=TRUE WHERE id=? AND user_id=?", (token_id, user_id)
            )
        )
