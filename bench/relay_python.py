"""The Python around one relayed frame per socket: broadcast, peer, metrics, the write.

In process, no sockets: one room of K peers, each over collab's uvicorn protocol behind the
metrics middleware (``SocketObserver``), whose transports take every frame at once (a C
function that drops it: the write syscall is not measured, only the Python around it). It
relays 5,000 distinct frames with ``LiveDoc.broadcast`` to K-1 sockets each and reports the
best of 7 rounds in ns per delivery, and that the metrics counted every frame. ``--tree``
measures another checkout (on sys.path first), e.g. main's, for an A/B:

    python bench/relay_python.py [--peers 50] [--tree /work/main] [--frames 5000 --rounds 7]

Under ``valgrind --tool=callgrind`` with ``--rounds 1`` and two values of ``--frames``, the
difference of the instruction counts over the difference of deliveries is the instructions per
delivery, repeatable on a shared machine (as bench/sync_path.py counts them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path
from typing import Any


class _Transport:
    __slots__ = ("write",)

    def __init__(self) -> None:
        self.write = collections.deque(maxlen=0).append  # takes the frame, keeps nothing

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _relay(peers: int, count: int, rounds: int) -> tuple[float, int]:
    from uvicorn.config import Config
    from uvicorn.server import ServerState
    from websockets.protocol import State

    from collab.cli.wsprotocol import write_now_protocol
    from collab.metrics import Metrics
    from collab.metrics.observer import SocketObserver
    from collab.sync.livedoc import LiveDoc
    from collab.sync.peer import WRITE_NOW, DirectSocket, Peer

    async def app(scope: Any, receive: Any, send: Any) -> None:
        writes.append(scope[WRITE_NOW])

    async def nothing(*args: Any) -> Any:
        raise AssertionError

    config = Config(app=app, ws=write_now_protocol(), ws_per_message_deflate=False)
    config.load()
    factory: Any = config.ws_protocol_class
    metrics = Metrics()
    observer = SocketObserver(app, metrics)
    room: Any = type("Room", (), {})()
    room.peers = {}
    for _ in range(peers):
        protocol = factory(config, ServerState(), {}, asyncio.get_running_loop())
        protocol.transport = _Transport()
        protocol.conn.state = State.OPEN
        protocol.handshake_complete = True  # as the accept leaves it
        writes: list[Any] = []
        await observer({"type": "websocket", WRITE_NOW: protocol.write_now}, nothing, nothing)
        peer = Peer(
            DirectSocket(nothing, nothing, writes[0]), max_queue_bytes=1 << 20, send_timeout=10
        )
        peer.start()
        room.peers[peer.id] = peer
    frames = [b"\x00\x02" + i.to_bytes(4, "big") + bytes(40) for i in range(count)]
    exclude = next(iter(room.peers))
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for frame in frames:
            LiveDoc.broadcast(room, frame, exclude)
        best = min(best, time.perf_counter() - started)
        await asyncio.sleep(0)
    counted = metrics.registry.get_sample_value(
        "collab_messages_sent_total", {"type": "sync_update"}
    )
    return best / (len(frames) * (peers - 1)), int(counted or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--peers", type=int, default=50)
    parser.add_argument("--tree", help="a checkout to measure instead of this one")
    parser.add_argument("--frames", type=int, default=5000, help="frames relayed per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, args.tree or str(Path(__file__).resolve().parent.parent))
    seconds, counted = asyncio.run(_relay(args.peers, args.frames, args.rounds))
    expected = args.rounds * args.frames * (args.peers - 1)
    print(
        f"{seconds * 1e9:.0f} ns per delivery, {args.peers} peers; counted {counted} of {expected}"
    )


if __name__ == "__main__":
    main()
