"""A socket lives no longer than the credential behind it: one timer per socket.

The principal says when its credential ends (``Principal.expires_at``: a session's expiry, a
room token's ``exp``, for a ticket the session that minted it). At that instant the socket is
closed:

- a session (or a ticket it minted) with 4401, like a revoked one: the user must log in again;
- a room token with 4001 (:class:`collab.errors.TokenExpired`), outside the 4400-4499 range
  y-websocket >= 3.1 treats as final, so the client reconnects at once with its current
  ``provider.params``: a client that put a fresh token there carries on, and its unsent edits
  go out in the reconnect's sync, so nothing is lost. One still holding the expired token is
  then refused with 4401.

Revocations (logout, a revoked token, a disabled user) close sockets right away elsewhere
(``RoomRegistry.close_matching``); this module only handles the passing of time. The timer is
an event-loop timer handle, cancelled when the socket ends: no task, nothing per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from collab.auth.principal import Principal
from collab.errors import TokenExpired, close_code_for
from collab.sync.peer import Peer

SESSION_EXPIRED = (4401, "session expired")


def expiry_close(principal: Principal) -> tuple[int, str]:
    """The close code and reason for ``principal``'s credential running out."""
    if principal.via == "room_token":
        return close_code_for(TokenExpired())
    return SESSION_EXPIRED


class ExpiryTimer:
    """Closes ``peer`` once the wall clock reaches its principal's ``expires_at``.

    ``clock`` is the wall clock credentials are stamped with (injectable for tests); the event
    loop's timer only says when to look again, so a clock that jumps is re-read, not trusted.
    """

    __slots__ = ("_handle", "clock", "close", "expires_at", "peer")

    def __init__(self, peer: Peer, *, clock: Callable[[], float] = time.time) -> None:
        self.peer = peer
        self.clock = clock
        principal = peer.principal
        self.expires_at = principal.expires_at if principal is not None else None
        self.close = expiry_close(principal) if principal is not None else SESSION_EXPIRED
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Arm the timer (nothing to do for a credential that never expires)."""
        self.check()

    def check(self) -> None:
        """Close the socket if its credential has ended by now; else look again when it ends."""
        self._handle = None
        if self.expires_at is None or self.peer.closing:
            return
        left = self.expires_at - self.clock()
        if left <= 0:
            self.peer.close(*self.close)
            return
        self._handle = asyncio.get_running_loop().call_later(left, self.check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def armed(self) -> bool:
        return self._handle is not None
