"""Where a client's frames start (``collab.cli.wsframes``), however the reads cut them."""

from __future__ import annotations

import random

import pytest
from websockets.frames import Frame, Opcode

from collab.cli.wsframes import FrameBounds


@pytest.mark.parametrize("seed", range(20))
def test_frame_bounds_knows_where_each_frame_starts_however_the_reads_cut(seed: int) -> None:
    """Frames of every length encoding, masked or not, cut into reads at random offsets (the
    header's field boundaries among them): ``at_start`` after a read is whether it ended where
    a frame ends."""
    rng = random.Random(seed)
    frames = [
        Frame(Opcode.BINARY, bytes(rng.randrange(256) for _ in range(size))).serialize(
            mask=rng.random() < 0.8, extensions=[]
        )
        for size in rng.choices([0, 1, 5, 125, 126, 300, 65535, 65536, 70_000], k=12)
    ]
    stream = b"".join(frames)
    starts = {0}
    for frame in frames:
        starts.add(max(starts) + len(frame))
    header_ends: set[int] = set()
    for start, frame in zip(sorted(starts), frames, strict=False):
        header_ends.update(start + k for k in (2, 4, 6, 8, 10, 14) if k < len(frame))
    cuts = sorted({*rng.sample(range(1, len(stream)), 40), *header_ends, len(stream)})
    bounds, prev = FrameBounds(), 0
    for cut in cuts:
        bounds.feed(stream[prev:cut])
        assert bounds.at_start == (cut in starts), cut
        prev = cut
