"""What a message's text mentions (collab.chat.mentions): the light markup of docs/chat.md."""

from __future__ import annotations

import pytest

from collab.chat.mentions import MAX_HANDLES, Mentioned, parse_mentions, without_code


@pytest.mark.parametrize(
    ("text", "room", "handles"),
    [
        ("hi @ann", False, ("ann",)),
        ("@Ann and @BOB, @ann again", False, ("ann", "bob")),
        ("@room: lunch", True, ()),
        ("@ROOM and @carol", True, ("carol",)),
        ("write to ann@example.com or bob.smith@x.org", False, ()),
        ("@ann@example.com", False, ()),
        ("(@ann) [@bob] '@carol' \"@dave\"", False, ("ann", "bob", "carol", "dave")),
        ("thanks @ann.", False, ("ann.",)),
        ("@ann.smith-2_x is here", False, ("ann.smith-2_x",)),
        ("`@ann` and ``code `@bob` `` but @carol", False, ("carol",)),
        ("```\n@ann\n```\n@bob", False, ("bob",)),
        ("```py\n@ann never closed\n@bob", False, ()),
        ("````\n```\n@ann\n````\n@bob", False, ("bob",)),
        ("an unmatched ` then @ann", False, ("ann",)),
        ("@-ann @_ann @.ann", False, ()),
        ("@" + "a" * 32, False, ("a" * 32,)),
        ("@" + "a" * 33, False, ()),
        ("@annñ @ann_ @ann- x@ann +@ann .@ann", False, ("ann_", "ann-")),
        ("@here @everyone @channel", False, ("here", "everyone", "channel")),
        ("e-mail: @", False, ()),
    ],
)
def test_mentions_in_text(text: str, room: bool, handles: tuple[str, ...]) -> None:
    assert parse_mentions(text) == Mentioned(room, handles)


def test_candidates_prefer_the_whole_token() -> None:
    mentioned = Mentioned()
    assert mentioned.candidates("ann.") == ("ann.", "ann")
    assert mentioned.candidates("ann") == ("ann",)
    assert mentioned.candidates("a-_") == ("a-_", "a")


def test_handles_are_bounded_per_message() -> None:
    text = " ".join(f"@user{n}" for n in range(MAX_HANDLES + 50)) + " @room"
    found = parse_mentions(text)
    assert len(found.handles) == MAX_HANDLES and found.room


def test_code_is_blanked_out() -> None:
    assert "@ann" not in without_code("a `@ann` b")
    assert without_code("no code") == "no code"
