"""Personal API tokens in memory: each kept with the digest of its secret."""

from __future__ import annotations

import uuid
from dataclasses import replace

from collab.meta.api_tokens import ApiToken
from collab.meta.base import digest, new_secret
from collab.meta.memory.base import MemoryKind


class MemoryApiTokens(MemoryKind):
    async def create_api_token(self, user_id: str, name: str) -> tuple[ApiToken, str]:
        secret = new_secret()
        token = ApiToken(uuid.uuid4().hex, user_id, name, created_at=self.clock())
        self.tables.tokens[token.id] = (token, digest(secret))
        return token, secret

    async def find_api_token(self, secret: str) -> ApiToken | None:
        wanted = digest(secret)
        tokens = self.tables.tokens
        for token, token_digest in tokens.values():
            if token_digest == wanted and not token.revoked:
                stamped = replace(token, last_used_at=self.clock())
                tokens[token.id] = (stamped, token_digest)
                return stamped
        return None

    async def list_api_tokens(self, user_id: str) -> list[ApiToken]:
        found = [t for t, _ in self.tables.tokens.values() if t.user_id == user_id]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def revoke_api_token(self, token_id: str, user_id: str) -> None:
        entry = self.tables.tokens.get(token_id)
        if entry is not None and entry[0].user_id == user_id:
            self.tables.tokens[token_id] = (replace(entry[0], revoked=True), entry[1])
