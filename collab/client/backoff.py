"""Exponential backoff with jitter, for reconnecting and retrying.

Each failure doubles the ceiling (``base`` x 2^n, at most ``cap``) and the wait is drawn in
``[ceiling / 2, ceiling]`` ("equal jitter"): a restarted server is not hit by every client at
the same instant, and no client waits less than half its ceiling. ``reset()`` after a success.
``random`` is injectable so tests can pin the draws.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        base: float = 0.25,
        cap: float = 30.0,
        *,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not 0 < base <= cap:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.random = random
        self.failures = 0

    def next(self) -> float:
        """The wait before the next attempt (and count this failure)."""
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 62))
        self.failures += 1
        return float(ceiling / 2 + self.random() * ceiling / 2)

    def reset(self) -> None:
        self.failures = 0
