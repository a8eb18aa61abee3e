"""The writer's thread waiting, mid-transaction, for the event loop's next round of writes
(``collab.db.database``: a transaction is one trip to the thread, whatever its rounds)."""

from __future__ import annotations

import threading
from typing import Any

from collab.db.errors import StoreError

# How long the writer's thread waits, mid-transaction, for the event loop to take its turn.
LOOP_TIMEOUT = 60.0


class Handover:
    """The writer's thread waiting mid-transaction for the loop's next round of writes. A
    thread that waited ``LOOP_TIMEOUT`` for a loop that did not even start (stopped, or
    stuck) gives up: the transaction fails, and the loop's late turn then does nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._started = False
        self._abandoned = False
        self._value: list[Any] | BaseException = []

    def start(self) -> bool:
        """On the loop: whether the thread still waits (then it waits for ``give``)."""
        with self._lock:
            self._started = not self._abandoned
            return self._started

    def give(self, value: list[Any] | BaseException) -> bool:
        """On the loop: the next round's writes (or why there is none); False if the thread
        no longer waits for them."""
        with self._lock:
            if self._abandoned:
                return False
            self._value = value
            self._done.set()
            return True

    def wait(self) -> list[Any]:
        """On the writer's thread."""
        if not self._done.wait(LOOP_TIMEOUT):
            with self._lock:
                if not self._started:
                    self._abandoned = True
                    raise StoreError("the event loop did not continue the transaction")
            self._done.wait()  # started: the rest is one more turn of the loop
        if isinstance(self._value, BaseException):
            raise StoreError(f"a continuation failed: {self._value!r}") from self._value
        return self._value
