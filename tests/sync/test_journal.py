"""The journal in-process: group commit, what it reports, and the compaction policy."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pycrdt import Doc, Text

from collab.sync.hooks import NoHooks
from collab.sync.journal import Journal
from tests.support.waiting import wait_until
from tests.sync.conftest import KEY, GatedStore, settings, text_update

pytestmark = pytest.mark.anyio


class Reports:
    def __init__(self) -> None:
        self.committed: list[int] = []
        self.failed: list[BaseException] = []


def journal(store: GatedStore, doc: Doc[Any], **kw: Any) -> tuple[Journal, Reports]:
    reports = Reports()
    j = Journal(
        KEY,
        store,
        settings(**kw),
        snapshot=doc.get_update,
        on_committed=reports.committed.append,
        on_failed=reports.failed.append,
        hooks=NoHooks(),
    )
    return j, reports


async def test_group_commit_reports_each_commit_in_order() -> None:
    store, doc = GatedStore(), Doc[Any]()
    j, reports = journal(store, doc)
    fresh_exists = j.exists  # read once: mypy would keep it False after the records below
    assert not fresh_exists
    store.append_gate.clear()
    assert j.record([text_update("a", doc)], deleted=0) == 1
    await wait_until(lambda: store.appends == 1)  # the first commit waits at the gate ...
    # ... so the next two form one group
    j.record([text_update("b", doc)], deleted=0)
    j.record([text_update("c", doc)], deleted=0)
    assert j.exists and j.uncommitted_bytes > 0 and reports.committed == []
    store.append_gate.set()
    with anyio.fail_after(5):
        await j.flush()
    assert reports.committed == [1, 3] and store.appends == 2
    assert j.committed == j.recorded == 3 and j.uncommitted == []
    assert j.generation is not None  # learnt from the store after the first commit
    assert j.log_rows == 3 and j.size == j.log_bytes


async def test_a_failed_commit_reports_once_and_commits_nothing() -> None:
    store, doc = GatedStore(), Doc[Any]()
    store.fail_appends_for.add(KEY)
    j, reports = journal(store, doc)
    j.record([text_update("x", doc)], deleted=0)
    with anyio.fail_after(5):
        await j.flush()
    assert reports.committed == [] and len(reports.failed) == 1
    assert isinstance(reports.failed[0], OSError)
    assert j.committed == 0 and j.halted and j.uncommitted


async def test_compaction_folds_the_log_into_one_snapshot() -> None:
    store, doc = GatedStore(), Doc[Any]()
    j, _ = journal(store, doc, compact_rows=3)
    for i in range(3):
        j.record([text_update(str(i), doc)], deleted=0)
        with anyio.fail_after(5):
            await j.flush()
    stored = await store.load(KEY)
    assert stored.updates == [] and stored.snapshot
    assert j.log_rows == 0 and j.snapshot_bytes == len(stored.snapshot)
    again: Doc[Any] = Doc()
    again.apply_update(stored.snapshot)
    assert str(again.get("text", type=Text)) == "210"


async def test_a_large_deletion_is_a_reason_to_compact() -> None:
    store, doc = GatedStore(), Doc[Any]()
    j, _ = journal(store, doc, compact_bytes=1000, compact_rows=1000)
    j.record([text_update("x", doc)], deleted=0)
    with anyio.fail_after(5):
        await j.flush()
    assert not j.should_compact()
    j.deleted_since_compaction = 501
    assert j.should_compact()
