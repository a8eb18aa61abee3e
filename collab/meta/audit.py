"""The audit log: who did what, when, to which room, append-only and read newest first.

``detail`` is stored as JSON, so it must be JSON-serialisable; it reads back as a copy. Ids
only grow (never reused, even after a purge), so a room's ``audit_floor`` (the highest id when
it was created) separates its rows from those of an earlier room of the same id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AuditEvent:
    at: float
    action: str  # "login.success", "login.failure", "member.role", "token.mint", ...
    actor: str | None = None  # user id
    room_id: str | None = None
    target: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    ip: str | None = None
    id: int | None = None


class Audit(Protocol):
    async def record(self, event: AuditEvent) -> None:
        """Append an event (its ``id`` is assigned by the store)."""

    async def list_audit(
        self,
        *,
        room_id: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> list[AuditEvent]:
        """Events newest first, optionally of one room, with ids below ``before_id`` and above
        ``after_id`` (a room's ``audit_floor``)."""
