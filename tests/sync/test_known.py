from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from collab.sync.known import KnownState, covered, merged
from collab.wire import Limits, scan_update


def test_merged_and_covered() -> None:
    ranges = merged([(0, 100), (5, 6), (200, 210), (210, 220)])
    assert ranges == [(0, 100), (200, 220)]
    assert covered(ranges, 10, 20) and covered(ranges, 205, 219)
    assert not covered(ranges, 90, 101) and not covered(ranges, 150, 151)
    assert not covered([], 0, 1)


def test_echoes_add_nothing_new_edits_and_deletes_do() -> None:
    limits = Limits()
    server: Doc[Any] = Doc()
    client: Doc[Any] = Doc()
    text = client.get("text", type=Text)
    text += "hello world"
    insert = client.get_update()
    server.apply_update(insert)
    known = KnownState(limits)
    assert known.adds_nothing(server, 1, scan_update(insert, limits))  # an echo
    assert known.adds_nothing(server, 1, scan_update(b"\x00\x00", limits))  # empty
    before = client.get_state()
    del text[0:6]
    delete = client.get_update(before)
    assert not known.adds_nothing(server, 1, scan_update(delete, limits))
    server.apply_update(delete)
    assert known.adds_nothing(server, 2, scan_update(delete, limits))  # the delete echoed
    before = client.get_state()
    text += "!"
    assert not known.adds_nothing(server, 2, scan_update(client.get_update(before), limits))
