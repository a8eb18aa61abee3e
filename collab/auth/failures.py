"""Failed credentials, limited per client address: guessing a token costs time.

Every credential presented (a bearer token or ``?token=``, or the session cookie) that does not
check out spends one attempt of its client address's budget (``auth_failure_burst`` at once,
refilled at ``auth_failure_rate`` per second). While the budget is spent, every API request and
socket handshake that presents a credential from that address is refused (HTTP 429, with
``Retry-After``) before the credential is looked at, so a right guess cannot be told from a
wrong one. Requests without credentials guess nothing and are not counted. The address is the
real client's behind trusted proxies (``collab.ratelimit.client_address``).

Each failure is audited by :func:`collab.auth.authenticate.authenticate` (never with the
credential) and reported, like each refusal, to ``FailureReports`` (the app's metrics).
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

from collab.errors import TooManyRequests
from collab.ratelimit import Clock, RateLimiter

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
    """The failure budget of each client address (bounded in memory like every limiter)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        reports: FailureReports | None = None,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._limiter = RateLimiter(rate, burst, max_keys=max_keys, clock=clock)
        self.reports: FailureReports = reports or NoReports()

    def check(self, address: str, door: Door) -> None:
        """TooManyRequests while ``address`` has no failure left to spend."""
        wait = self._limiter.retry_after(address)
        if wait > 0:
            self.reports.credential_refused(door)
            raise TooManyRequests(None, wait, "too many failed credentials; try again later")

    def failed(self, address: str, door: Door) -> None:
        """Spend one of ``address``'s failures."""
        self._limiter.allow(address)
        self.reports.credential_failed(door)
