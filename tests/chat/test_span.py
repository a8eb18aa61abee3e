"""``WindowState``'s record of this node's writes (``collab.chat.span``): kept only with several
nodes, for ``RECHECK_S``, and checked only for messages another node's update changed."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc

from collab.chat.schema import messages_map
from collab.chat.span import RECHECK_S, WindowState
from collab.sync.crossnode import REMOTE

VALUE = {"id": "m1", "seq": 1, "text": "mine"}


def test_one_node_records_nothing() -> None:
    state = WindowState()
    state.wrote("m1", VALUE, 0.0)
    assert state.written == {}


def test_writes_are_kept_for_the_recheck_time_then_dropped() -> None:
    state = WindowState()
    state.watch(Doc())
    state.wrote("m1", VALUE, 0.0)
    state.wrote("m2", VALUE, 1.0)
    state.wrote("m1", VALUE, 2.0)  # written again: the latest time counts
    assert list(state.written) == ["m2", "m1"]
    state.wrote("m3", VALUE, 1.0 + RECHECK_S + 0.5)
    assert list(state.written) == ["m1", "m3"]


def test_only_what_another_nodes_update_changed_is_overwritten() -> None:
    doc: Doc[Any] = Doc()
    state = WindowState()
    state.watch(doc)
    messages = messages_map(doc)
    for message_id in ("m1", "m2"):
        with doc.transaction():
            messages[message_id] = {**VALUE, "id": message_id}
        state.insert(1, message_id)
        state.wrote(message_id, {**VALUE, "id": message_id}, 0.0)
    with doc.transaction():  # a change made here is not another node's
        messages["m2"] = {**VALUE, "id": "m2", "text": "changed here"}
    assert state.overwritten(doc) == []
    with doc.transaction(origin=REMOTE):
        messages["m1"] = {**VALUE, "id": "m1", "text": "theirs"}
    assert state.overwritten(doc) == ["m1"]
    assert state.overwritten(doc) == []  # checked once
    with doc.transaction(origin=REMOTE):  # another node wrote what this one did
        messages["m1"] = {**VALUE, "id": "m1"}
    assert state.overwritten(doc) == []
