"""collab.wire.caps: the server's Limits come from its Settings."""

from __future__ import annotations

from collab.settings import Settings
from collab.wire import Limits, limits_from


def test_limits_from_settings_takes_the_two_depths_and_defaults_the_rest() -> None:
    assert limits_from(Settings()) == Limits()
    assert limits_from(Settings(max_any_depth=5, max_type_depth=7)) == Limits(
        max_any_depth=5, max_type_depth=7
    )
