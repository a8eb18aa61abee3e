"""The audit log in SQLite: ``detail`` as JSON text, ``id`` the row's rowid (newest first)."""

from __future__ import annotations

import json
from typing import Any

from collab.meta.audit import AuditEvent
from collab.meta.sqlite.base import SQLiteKind, as_row


def _audit(row: tuple[Any, ...]) -> AuditEvent:
    i, at, action, actor, room_id, target, detail, ip = row
    return AuditEvent(at, action, actor, room_id, target, json.loads(detail), ip, i)


class SQLiteAudit(SQLiteKind):
    async def record(self, event: AuditEvent) -> None:
        row = as_row(event, id=None, detail=json.dumps(event.detail))
        await self._write(lambda db: db.table("audit").insert(row))

    async def list_audit(
        self, *, room_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEvent]:
        where: list[str] = ["1"]
        params: list[Any] = []
        if room_id is not None:
            where.append("room_id=?")
            params.append(room_id)
        if before_id is not None:
            where.append("id<?")
            params.append(before_id)
        rows = await self._read(
            "SELECT id, at, action, actor, room_id, target, detail, ip FROM audit"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [_audit(row) for row in rows]
