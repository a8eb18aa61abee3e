"""The authenticated party behind a request or socket, however it proved itself.

A principal also says how long the credential behind it lives (``expires_at``) and which
revocable credential it rests on (``session_id``, ``token_id``, ``jti``): an open socket is
closed when any of them ends (``collab.sync.expiry``, ``RoomRegistry.close_matching``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from collab.meta import Role

Via = Literal["session", "dev", "room_token", "ticket", "api_token"]


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    via: Via
    email: str | None = None
    is_admin: bool = False
    session_id: str | None = None  # revoking it closes the sockets it opened (4401)
    token_id: str | None = None  # API token id, likewise
    jti: str | None = None  # a room token's id: revoking it closes its sockets (4401)
    expires_at: float | None = None  # Unix time the credential behind it ends (None: never)
    room_scope: str | None = None  # room tokens and tickets are bound to one room
    doc_pattern: str | None = None  # fnmatch pattern of docs a room token may open
    role_ceiling: Role | None = None  # a token never grants more than this

    @property
    def by_cookie(self) -> bool:
        """Browsers send cookies on cross-site requests: these need Origin/CSRF checks."""
        return self.via == "session"

    def allows(self, room_id: str, doc: str | None = None) -> bool:
        if self.room_scope is not None and self.room_scope != room_id:
            return False
        if doc is not None and self.doc_pattern is not None:
            return fnmatch.fnmatchcase(doc, self.doc_pattern)
        return True

    def cap(self, role: Role) -> Role:
        if self.role_ceiling is not None and role > self.role_ceiling:
            return self.role_ceiling
        return role
