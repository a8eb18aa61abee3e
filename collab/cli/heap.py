"""The server's heap after startup, kept out of Python's cyclic garbage collector.

A full collection (generation 2) walks every object the collector tracks and holds the event
loop, and so every post, relay and answer, for as long: with 1,000 chat sockets open, ``collab
serve`` tracks ~175,000 objects and one full collection took 76-86 ms on the shared 2-core
bench machine (bench/profiles/CHAT-LATENCY.md), about the chat workload's post -> seen p99 at
20 rooms x 50 readers. About 67,000 of them are made by startup (modules, the app, its
services) and live as long as the process: ``gc.freeze()`` moves them to the permanent
generation that collections skip, so each later full collection walks only what was made
since (sockets, docs, requests): 30-57 ms at the same point.

Costs: a cycle made at startup that turns into garbage later is never freed (the collection
just before the freeze frees startup's own garbage first); and a full collection runs once the
objects that survived younger ones reach a quarter of those it last walked, so without the
frozen ones they come more often, each shorter in the same proportion: the same work in total,
shorter pauses.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then freeze what is left; how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
