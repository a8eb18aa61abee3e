"""Bots and incoming webhooks (``migrations/sqlite/0011_integrations.sql``)."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from collab.errors import Conflict
from collab.meta.base import digest, new_secret
from collab.meta.bots import BotRecord
from collab.meta.incoming_hooks import IncomingHook
from collab.meta.sql.base import IntegrityError, SqlKind, Tx, as_row, insert

_BOT = "user_id, room_id, name, created_by, created_at"
_HOOK = "id, room_id, bot_id, name, created_by, created_at, revoked_at, last_used_at"


def _hook(row: tuple[Any, ...]) -> IncomingHook:
    return IncomingHook(*row)


class SqlBots(SqlKind):
    async def add_bot(self, bot: BotRecord) -> None:
        def _add(db: Tx) -> None:
            try:
                insert(db, "bots", as_row(bot))
            except IntegrityError:
                raise Conflict("already a bot") from None

        await self._write(_add)

    async def get_bot(self, room_id: str, user_id: str) -> BotRecord | None:
        rows = await self._lookup(
            f"SELECT {_BOT} FROM bots WHERE user_id=? AND room_id=?", (user_id, room_id)
        )
        return BotRecord(*rows[0]) if rows else None

    async def list_bots(self, room_id: str) -> list[BotRecord]:
        rows = await self._read(
            f"SELECT {_BOT} FROM bots WHERE room_id=? ORDER BY created_at, user_id", (room_id,)
        )
        return [BotRecord(*row) for row in rows]

    async def remove_bot(self, room_id: str, user_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "DELETE FROM bots WHERE user_id=? AND room_id=?", (user_id, room_id)
            )
        )


class SqlIncomingHooks(SqlKind):
    async def create_incoming_hook(
        self, room_id: str, bot_id: str, name: str, created_by: str
    ) -> tuple[IncomingHook, str]:
        secret = new_secret()
        hook = IncomingHook(uuid.uuid4().hex, room_id, bot_id, name, created_by, self.clock())
        row = as_row(hook, digest=digest(secret))
        await self._write(lambda db: insert(db, "incoming_hooks", row))
        return hook, secret

    async def find_incoming_hook(
        self, hook_id: str, secret: str
    ) -> tuple[IncomingHook, bool] | None:
        def _find(db: Tx) -> tuple[IncomingHook, bool] | None:
            row = db.execute(
                f"SELECT {_HOOK}, digest FROM incoming_hooks WHERE id=? AND revoked_at IS NULL",
                (hook_id,),
            ).fetchone()
            if row is None:
                return None
            if not hmac.compare_digest(row[-1], digest(secret)):
                return _hook(row[:-1]), False
            now = self.clock()
            db.execute("UPDATE incoming_hooks SET last_used_at=? WHERE id=?", (now, hook_id))
            return _hook((*row[:-2], now)), True

        return await self._write(_find)

    async def list_incoming_hooks(self, room_id: str) -> list[IncomingHook]:
        rows = await self._read(
            f"SELECT {_HOOK} FROM incoming_hooks WHERE room_id=? ORDER BY created_at, id",
            (room_id,),
        )
        return [_hook(row) for row in rows]

    async def revoke_incoming_hook(self, room_id: str, hook_id: str) -> IncomingHook | None:
        def _revoke(db: Tx) -> IncomingHook | None:
            db.execute(
                "UPDATE incoming_hooks SET revoked_at=? WHERE id=? AND room_id=?"
                " AND revoked_at IS NULL",
                (self.clock(), hook_id, room_id),
            )
            row = db.execute(
                f"SELECT {_HOOK} FROM incoming_hooks WHERE id=? AND room_id=?", (hook_id, room_id)
            ).fetchone()
            return _hook(row) if row else None

        return await self._write(_revoke)
