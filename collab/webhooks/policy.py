"""When to try a delivery again, when to stop trying an endpoint, when to give up: pure
functions of the clock's ``now``, so tests move time instead of waiting.

- **Retries**: after the n-th failed attempt, wait ``retry_base`` x 2^(n-1) (at most
  ``retry_cap``), drawn in its upper half (jitter); a delivery whose day (``give_up_after``
  since it was enqueued, or redelivered) has passed fails for good.
- **Circuit breaker**: ``breaker_after`` consecutive failures of one endpoint open its circuit
  for ``breaker_pause`` (doubling with each further failure, at most ``breaker_cap``): none of
  its deliveries is claimed meanwhile, so a dead endpoint costs the others nothing. Then one
  delivery probes it (half-open): a success closes it, a failure opens it again.
- **Disabling**: an endpoint that has failed every attempt for ``disable_after`` is disabled,
  with the reason its owner sees (``GET .../webhooks/{id}``) until they enable it again.
"""

from __future__ import annotations

import datetime
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, replace

from collab.meta import Health

DAY = 24 * 3600.0


@dataclass(frozen=True)
class Policy:
    retry_base: float = 5.0
    retry_cap: float = 3600.0
    give_up_after: float = DAY
    breaker_after: int = 5
    breaker_pause: float = 30.0
    breaker_cap: float = 3600.0
    disable_after: float = DAY
    timeout: float = 5.0  # one attempt, all of it
    max_read: int = 4096  # bytes of an answer read at most
    lease: float = 60.0  # a claim outlives a dead worker this long
    concurrency: int = 16  # attempts in flight per worker


def retry_delay(policy: Policy, failed_attempts: int, random: Callable[[], float]) -> float:
    ceiling = min(policy.retry_cap, policy.retry_base * 2 ** min(failed_attempts - 1, 40))
    return float(ceiling / 2 + random() * ceiling / 2)


def after_success() -> Health:
    return Health()


def after_failure(policy: Policy, health: Health, now: float, error: str) -> Health:
    failures = health.failures + 1
    since = health.failing_since if health.failing_since is not None else now
    open_until = None
    if failures >= policy.breaker_after:
        pause = policy.breaker_pause * 2 ** min(failures - policy.breaker_after, 40)
        open_until = now + min(policy.breaker_cap, pause)
    found = replace(health, failures=failures, failing_since=since, open_until=open_until)
    if now - since >= policy.disable_after and health.disabled_at is None:
        started = datetime.datetime.fromtimestamp(since, datetime.UTC).isoformat(timespec="seconds")
        reason = f"every attempt failed since {started} ({failures} in a row; last: {error})"
        found = replace(found, disabled_at=now, disabled_reason=reason[:300])
    return found


def random_jitter() -> float:
    return _random.random()
