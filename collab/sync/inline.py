"""A socket's frames handled inside the server's ``data_received``: no queue, no task wake-up.

Without it every frame a client sends goes through websockets' generator-based parser, an
event list, uvicorn's receive queue (reading paused until the app takes the message), a
wake-up of the socket's read task, Starlette's ``WebSocket.receive`` and the middleware's
receive wrappers before ``LiveDoc`` sees it: more Python per frame than handling it (issue 11,
bench/profiles/CPU-PER-UPDATE.md).

collab's uvicorn protocol (``collab.cli.wsprotocol``) offers ``READ_NOW`` in the scope:
``register(take) -> wake``. While the socket's read loop waits for its next message with
nothing queued, the protocol cuts each whole, final, masked binary frame off the bytes it
received (anything else, and everything after it in that read, goes through websockets as
before) and calls ``take(payload)``:

- ``take`` returns False, touching nothing, when the frame cannot be handled now (the read loop
  is busy, the document is failed or being rebuilt): the protocol queues it as uvicorn would,
  and the read loop handles it in order.
- Otherwise it handles the frame as the read loop would (``LiveDoc.handle_now``, then the
  socket's rate throttle) and returns True. What needs the read loop (an error that closes the
  socket, a throttle pause) is left in ``pending``: ``take`` stops taking frames and calls
  ``wake()``, which queues ``WAKE``; the read loop, woken by it, raises the error or sleeps the
  pause, exactly where it would have without this path.

So frames are handled in the order they arrived, through the same checks, by whichever path
takes them; the read loop stays the socket's owner (disconnect, close, cleanup). ``take`` runs
in the read loop's context (a copy made when it registered): what it logs carries the socket's
fields (``collab.logs``), and the tasks it starts (a peer's sender) inherit them, as from the
read loop.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from collab.errors import RateLimited, must_propagate
from collab.sync.admission import Throttle
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import Peer


class InlineReader:
    """One socket's ``take``: ``ready`` while its read loop waits with nothing queued."""

    __slots__ = ("context", "live", "peer", "pending", "ready", "throttle", "wake")

    def __init__(self, live: LiveDoc, peer: Peer, throttle: Throttle) -> None:
        self.live = live
        self.peer = peer
        self.throttle = throttle
        self.ready = False
        self.pending: BaseException | float | None = None  # for the read loop, with WAKE
        self.wake: Callable[[], None] | None = None
        self.context = contextvars.copy_context()  # the read loop's: made where it runs

    def take(self, frame: bytes) -> bool:
        if not self.ready or not self.live.usable:
            return False
        if not self.peer.takes_input:
            return True  # the server closed it: discarded, as the read loop would
        self.context.run(self._handle, frame)
        return True

    def _handle(self, frame: bytes) -> None:
        try:
            self.live.handle_now(self.peer, frame)
            pause = self.throttle.account(len(frame))
            if pause > 0:
                self.pending = RateLimited() if self.throttle.stalled else pause
        except BaseException as exc:  # the read loop raises it: the socket's close, as before
            if must_propagate(exc):
                raise
            self.pending = exc
        if self.pending is not None and self.wake is not None:
            self.ready = False
            self.wake()

    def wait_done(self) -> BaseException | float | None:
        """The read loop took ``WAKE``: what it must do now (once)."""
        pending, self.pending = self.pending, None
        return pending
