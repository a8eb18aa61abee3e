"""Each client test's garbage is collected at its own teardown, so a transport the client left
open is reported (a ResourceWarning, an error under ``filterwarnings = error``) on the test that
leaked it, not on whichever later test the collector happens to run in."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collect_garbage_at_teardown() -> Iterator[None]:
    yield
    gc.collect()
