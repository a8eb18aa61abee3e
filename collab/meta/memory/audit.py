"""The audit log in memory: a list in insertion order, ids from 1."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from collab.meta.audit import AuditEvent
from collab.meta.memory.base import MemoryKind


def _json_copy(detail: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON, as the SQLite store stores it (and refusing what it would)."""
    copied: dict[str, Any] = json.loads(json.dumps(detail))
    return copied


class MemoryAudit(MemoryKind):
    async def record(self, event: AuditEvent) -> None:
        detail = _json_copy(event.detail)
        audit = self.tables.audit
        audit.append(replace(event, id=len(audit) + 1, detail=detail))

    async def list_audit(
        self, *, room_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[AuditEvent]:
        found: list[AuditEvent] = []
        if limit <= 0:
            return found
        for event in reversed(self.tables.audit):
            assert event.id is not None
            if before_id is not None and event.id >= before_id:
                continue
            if room_id is not None and event.room_id != room_id:
                continue
            found.append(replace(event, detail=_json_copy(event.detail)))
            if len(found) >= limit:
                break
        return found
