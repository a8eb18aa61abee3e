"""SeqSet: which of a doc's stored updates a replica holds, with holes."""

from __future__ import annotations

from collab.sync.seqs import SeqSet


def holes(held: SeqSet) -> bool:
    return held.has_holes  # read through a call: mypy would narrow the property between asserts


def test_in_order_seqs_move_the_head() -> None:
    held = SeqSet()
    for seq in (1, 2, 3):
        held.add(seq)
    assert held.head == 3 and not holes(held) and 3 in held and 4 not in held


def test_seqs_past_a_hole_wait_until_it_closes() -> None:
    held = SeqSet(head=4)
    held.add_range(6, 7)  # our own commit got 6 and 7 while 5 (another node's) is on its way
    held.add(9)
    assert held.head == 4 and holes(held) and held.last == 9
    assert 6 in held and 7 in held and 5 not in held and 8 not in held
    held.add(5)
    assert held.head == 7 and holes(held)  # 8 is still missing
    held.add(8)
    assert held.head == 9 and not holes(held)
    held.add(3)  # already held: nothing changes
    assert held.head == 9


def test_a_range_at_the_head_and_cover_and_reset() -> None:
    held = SeqSet(head=2)
    held.add_range(3, 5)
    assert held.head == 5
    held.add_range(8, 8)
    held.add(12)
    held.cover(10)  # a whole-doc read: everything to 10 is in, 12 stays
    assert held.head == 10 and 12 in held and 11 not in held
    held.add(11)
    assert held.head == 12 and not holes(held)
    held.add(20)
    held.reset(15)  # a rebuild from the store: exactly up to 15
    assert held.head == 15 and 20 not in held and not holes(held)
