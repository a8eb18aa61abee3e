"""The audit log: ``detail`` as JSON text, ``id`` assigned by the database and only growing
(newest first)."""

from __future__ import annotations

import json
from typing import Any

from collab.meta.audit import AuditEvent
from collab.meta.sql.base import SqlKind, Tx, as_row, insert


def _audit(row: tuple[Any, ...]) -> AuditEvent:
    i, at, action, actor, room_id, target, detail, ip = row
    return AuditEvent(at, action, actor, room_id, target, json.loads(detail), ip, i)


def insert_event(db: Tx, event: AuditEvent) -> None:
    """Append ``event`` inside the caller's transaction (its id assigned by the database)."""
    row = as_row(event, detail=json.dumps(event.detail))
    del row["id"]
    insert(db, "audit", row)


class SqlAudit(SqlKind):
    async def record(self, event: AuditEvent) -> None:
        json.dumps(event.detail)  # refuse what cannot be stored before taking the writer
        await self._write(lambda db: insert_event(db, event))

    async def list_audit(
        self,
        *,
        room_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> list[AuditEvent]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if room_id is not None:
            where.append("room_id=?")
            params.append(room_id)
        if before_id is not None:
            where.append("id<?")
            params.append(before_id)
        if after_id is not None:
            where.append("id>?")
            params.append(after_id)
        rows = await self._read(
            "SELECT id, at, action, actor, room_id, target, detail, ip FROM audit"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [_audit(row) for row in rows]
