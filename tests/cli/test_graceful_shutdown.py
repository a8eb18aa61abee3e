"""``timeout_graceful_shutdown`` is seconds, fractions included: on SIGTERM a request still in
flight gets that long to finish before it is cut off. ``collab serve`` handed uvicorn
``int(...)`` of it, so 1.95 waited 1 s and 0.5 did not wait at all."""

from __future__ import annotations

import socket
import time

from tests.support.server import ServerFactory

GRACE = 1.95


def test_a_request_in_flight_gets_the_whole_fractional_grace(server_factory: ServerFactory) -> None:
    server = server_factory(timeout_graceful_shutdown=GRACE, body_timeout=30)
    user = server.create_user("alice")
    token = server.api_token(user)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # A request whose body has not all arrived: in flight until the body does (30 s).
        sock.sendall(
            b"POST /api/v1/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id": '
        )
        time.sleep(0.5)  # the app is reading the body
        started = time.monotonic()
        server.terminate(timeout=30)
        waited = time.monotonic() - started
    assert GRACE - 0.05 <= waited < GRACE + 5, waited
