"""The Fanout contract, run over every implementation (today the in-process twin)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collab.names import DocKey
from collab.sync.fanout import Fanout, LocalFanout

pytestmark = pytest.mark.anyio

IMPLEMENTATIONS: list[Callable[[], Fanout]] = [LocalFanout]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda f: f.__name__)
def fanout(request: pytest.FixtureRequest) -> Fanout:
    factory: Callable[[], Fanout] = request.param
    return factory()


async def test_an_update_reaches_every_other_node_of_that_doc_only(fanout: Fanout) -> None:
    key, other_key = DocKey("r", "d"), DocKey("r", "e")
    got: dict[str, list[bytes]] = {"a": [], "b": [], "c": [], "x": []}
    fanout.subscribe(key, "a", got["a"].append)
    fanout.subscribe(key, "b", got["b"].append)
    fanout.subscribe(key, "c", got["c"].append)
    fanout.subscribe(other_key, "x", got["x"].append)
    await fanout.publish(key, "a", b"u1")
    assert got == {"a": [], "b": [b"u1"], "c": [b"u1"], "x": []}
    fanout.unsubscribe(key, "c")
    await fanout.publish(key, "b", b"u2")
    assert got["a"] == [b"u2"] and got["c"] == [b"u1"]
    fanout.unsubscribe(key, "a")
    fanout.unsubscribe(key, "b")
    fanout.unsubscribe(key, "b")  # twice is harmless
    await fanout.publish(key, "z", b"u3")
    assert got["b"] == [b"u1"]
