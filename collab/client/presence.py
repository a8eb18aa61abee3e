"""``Presence``: one's own awareness state on a doc, and everyone else's (y-protocols).

The state is a JSON object others see beside the doc (a cursor, a status); the server stamps
its ``user`` field with the authenticated identity, so a bot need not (and cannot) claim
another name. It is sent at each (re)connect and whenever it changes, and renewed every
``RENEW`` seconds: Yjs clients drop a state not refreshed for 30 s. Others' states arrive
from the server; each reconnect starts from the server's picture of who is there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import anyio
from pycrdt import Awareness, Doc

from collab.client.frames import awareness_frame

RENEW = 15.0


class Presence:
    def __init__(self) -> None:
        self._awareness: Awareness | None = None
        self._local: dict[str, Any] | None = {}
        self._send: Callable[[bytes], None] | None = None
        self._changed = anyio.Event()

    # -- what a program uses -------------------------------------------------------------

    @property
    def client_id(self) -> int | None:
        return self._awareness.client_id if self._awareness else None

    @property
    def local(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._local)

    @property
    def states(self) -> dict[int, dict[str, Any]]:
        """Every client's state on this doc (one's own included), by Yjs client id."""
        if self._awareness is None:
            return {}
        return copy.deepcopy(self._awareness.states)

    def others(self) -> dict[int, dict[str, Any]]:
        mine = self.client_id
        return {k: v for k, v in self.states.items() if k != mine}

    def set(self, state: dict[str, Any] | None) -> None:
        """Replace one's state (None: leave, others stop seeing this client)."""
        self._local = copy.deepcopy(state)
        if self._awareness is not None:
            self._awareness.set_local_state(copy.deepcopy(state))
            self._announce()

    def update(self, **fields: Any) -> None:
        """Set some fields of one's state."""
        self.set({**(self._local or {}), **fields})

    async def wait_changed(self) -> None:
        """Until someone's state changes (or appears, or leaves)."""
        await self._changed.wait()

    # -- the connection's side -----------------------------------------------------------

    def attach(self, doc: Doc[Any], send: Callable[[bytes], None]) -> None:
        """A new connection for ``doc``: forget the old picture, announce our state."""
        awareness = Awareness(doc)
        awareness.set_local_state(copy.deepcopy(self._local))
        awareness.observe(self._observed)
        self._awareness = awareness
        self._send = send
        self._announce()
        self._wake()

    def detach(self) -> None:
        self._send = None

    def received(self, update: bytes) -> None:
        if self._awareness is None:
            return
        try:
            self._awareness.apply_awareness_update(update, "remote")
        except (ValueError, KeyError, TypeError, IndexError):
            return  # a state we cannot read is skipped

    async def renew_forever(self) -> None:
        while True:
            await anyio.sleep(RENEW)
            if self._awareness is not None and self._local is not None:
                self._awareness.set_local_state(copy.deepcopy(self._local))
                self._announce()

    def _announce(self) -> None:
        if self._awareness is None or self._send is None:
            return
        update = self._awareness.encode_awareness_update([self._awareness.client_id])
        self._send(awareness_frame(update))

    def _observed(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        if topic == "change":
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
