"""The audit log in memory: a list in insertion order, ids from 1, never reused."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from collab.meta.audit import AuditEvent
from collab.meta.memory.base import MemoryKind, Tables


def _json_copy(detail: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON, as the SQLite store stores it (and refusing what it would)."""
    copied: dict[str, Any] = json.loads(json.dumps(detail))
    return copied


def append_event(tables: Tables, event: AuditEvent) -> None:
    """Append ``event`` with the next id (shared with rooms: a deletion records its event)."""
    detail = _json_copy(event.detail)
    tables.audit_seq += 1
    tables.audit.append(replace(event, id=tables.audit_seq, detail=detail))


class MemoryAudit(MemoryKind):
    async def record(self, event: AuditEvent) -> None:
        append_event(self.tables, event)

    async def list_audit(
        self,
        *,
        room_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> list[AuditEvent]:
        found: list[AuditEvent] = []
        if limit <= 0:
            return found
        for event in reversed(self.tables.audit):
            assert event.id is not None
            if before_id is not None and event.id >= before_id:
                continue
            if after_id is not None and event.id <= after_id:
                break  # newest first: every later one is older still
            if room_id is not None and event.room_id != room_id:
                continue
            found.append(replace(event, detail=_json_copy(event.detail)))
            if len(found) >= limit:
                break
        return found
