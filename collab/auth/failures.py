"""Failed credentials, limited per client address: guessing a token costs time.

Every credential presented (a bearer token or ``?token=``, or the session cookie) that does not
check out spends one attempt of its client address's budget (``auth_failure_burst`` at once,
refilled at ``auth_failure_rate`` per second). While the budget is spent, every API request and
socket handshake that presents a credential from that address is refused (HTTP 429, with
``Retry-After``) before the credential is looked at, so a right guess cannot be told from a
wrong one. Requests without credentials guess nothing and are not counted. The address is the
real client's behind trusted proxies (``collab.ratelimit.client_address``). The budget is a
``collab.ratelimit.Limiter``: with a fan-out, every node spends from the same one.

Each failure is audited by :func:`collab.auth.authenticate.authenticate` (never with the
credential) and reported, like each refusal, to ``FailureReports`` (the app's metrics).
"""

from __future__ import annotations

from typing import Literal, Protocol

from collab.errors import TooManyRequests
from collab.ratelimit import Limiter

Door = Literal["api", "socket"]


class FailureReports(Protocol):
    def credential_failed(self, door: Door) -> None:
        """A presented credential did not check out (it was answered 401 / 4401)."""

    def credential_refused(self, door: Door) -> None:
        """A credential was refused unchecked (429): its address is over its failure budget."""


class NoReports:
    def credential_failed(self, door: Door) -> None:
        pass

    def credential_refused(self, door: Door) -> None:
        pass


class CredentialGuard:
    """The failure budget of each client address: one token of ``limiter`` per failure."""

    def __init__(self, limiter: Limiter, *, reports: FailureReports | None = None) -> None:
        self._limiter = limiter
        self.reports: FailureReports = reports or NoReports()

    async def check(self, address: str, door: Door) -> None:
        """TooManyRequests while ``address`` has no failure left to spend."""
        wait = await self._limiter.peek(address)
        if wait > 0:
            self.reports.credential_refused(door)
            raise TooManyRequests(None, wait, "too many failed credentials; try again later")

    async def failed(self, address: str, door: Door) -> None:
        """Spend one of ``address``'s failures."""
        await self._limiter.take(address)
        self.reports.credential_failed(door)
