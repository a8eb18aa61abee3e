"""A webhook's deliveries listed page by page, each page after the last one's (created_at, id):
each delivery once, also when one write made several at one instant (a post's
``message.posted`` and its ``mention``), against every backend."""

from __future__ import annotations

import pytest

from collab.meta import Endpoint, MetaStore
from tests.meta.support import T0

pytestmark = pytest.mark.anyio


async def test_pages_after_the_last_time_and_id_list_each_delivery_once(meta: MetaStore) -> None:
    hook = Endpoint("e", "r", "https://e.example/hook", ("*",), "whsec_x", "o", T0)
    await meta.create_webhook(hook)
    made = []
    for n, at in enumerate((T0, T0, T0 + 1, T0 + 1, T0 + 1, T0 + 2)):
        made += await meta.enqueue_webhook_event("r", "e", str(n), at, [f"msg_{n}"])
    whole = await meta.list_webhook_deliveries("e", 100)
    assert sorted(d.id for d in whole) == sorted(d.id for d in made)
    assert [(d.created_at, d.id) for d in whole] == sorted(
        ((d.created_at, d.id) for d in made), reverse=True
    )
    paged = []
    before: tuple[float, str] | None = None
    for _ in range(10):
        page = await meta.list_webhook_deliveries("e", 2, *(before or ()))
        paged += page
        if len(page) < 2:
            break
        before = (page[-1].created_at, page[-1].id)
    assert [d.id for d in paged] == [d.id for d in whole]
    # A bare time (an older cursor): what was created before it.
    older = await meta.list_webhook_deliveries("e", 100, T0 + 1)
    assert {d.id for d in older} == {"msg_0", "msg_1"}
