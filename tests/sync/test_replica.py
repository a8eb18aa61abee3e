"""The replica's index of server-authored changes (``collab.sync.replica``): ``author`` leaves
its updates unscanned until the index is consulted (``check``), which then knows them as if
each had been indexed at once; past ``MAX_UNINDEXED`` the index is rebuilt from the Doc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map

from collab.sync import replica as replica_module
from collab.sync.replica import Replica
from collab.wire import limits_from, scan_update
from tests.sync.conftest import settings


def _replica() -> Replica:
    replica = Replica(limits_from(settings()))
    replica.doc.observe(replica._capture)  # as ``rebuild`` wires a loaded Doc
    return replica


def _post(n: int) -> Callable[[Doc[Any]], None]:
    def change(doc: Doc[Any]) -> None:
        messages = doc.get("messages", type=Map)
        messages[f"m{n}"] = Map({"text": f"hello {n}", "reactions": Map()})
        if n > 1:
            messages[f"m{n - 1}"]["text"] = "edited"  # overwrites: deletes the old value

    return change


def _client_reaction(replica: Replica, n: int) -> bytes:
    """A client's update into a nested map the server made (its parent is a server item)."""
    client: Doc[Any] = Doc()
    client.apply_update(replica.doc.get_update())
    before = client.get_state()
    client.get("messages", type=Map)[f"m{n}"]["reactions"]["👍"] = "u1"
    return client.get_update(before)


@pytest.mark.parametrize("posts", [3, replica_module.MAX_UNINDEXED + 5])
def test_a_check_knows_every_authored_item_and_deletes_are_counted(posts: int) -> None:
    replica = _replica()
    for n in range(1, posts + 1):
        emitted, deleted = replica.author(_post(n), origin="server")
        scanned = [scan_update(u, replica.limits) for u in emitted]
        assert deleted == sum(length for info in scanned for _, _, length in info.deletes)
        assert emitted and (deleted > 0) == (n > 1)
    delta = replica.check(scan_update(_client_reaction(replica, posts), replica.limits))
    assert delta.pending_total == 0 and delta.integrated_structs == 1  # its parent is known
    assert replica._unindexed == []


def test_an_index_consulted_between_authored_changes_catches_up_each_time() -> None:
    replica = _replica()
    for n in range(1, 4):
        replica.author(_post(n), origin="server")
        update = _client_reaction(replica, n)
        info = scan_update(update, replica.limits)
        replica.apply(update, replica.check(info), origin=1)
    assert replica._unindexed == []
    assert replica.doc.get("messages", type=Map)["m3"]["reactions"]["👍"] == "u1"
