"""One contract, every SearchIndex: matching (trigram substrings, CJK, short terms), scopes,
versioned writes (late, repeated, out of order), drops, cursors and snippets."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab.search import Entry, Page, Scope, SearchIndex, parse_query
from collab.search.index import DELETED, SCAN_ROWS, Drop, QueryTooSlow
from collab.search.sqlite import SQLiteIndex
from tests.search.backends import KINDS, new_index

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000.0


@pytest.fixture(params=KINDS)
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    found = new_index(request, tmp_path)
    await found.open()
    yield found
    await found.close()


def msg(room: str, key: str, text: str, at: float, **kw: object) -> Entry:
    version = kw.pop("version", at)
    assert isinstance(version, float)
    return Entry("chat", room, key, text, at=at, version=version, **kw)  # type: ignore[arg-type]


def doc(room: str, key: str, text: str, at: float) -> Entry:
    return Entry("doc", room, key, text, at=at, version=at)


async def find(index: SearchIndex, q: str, *rooms: str, **kw: object) -> list[str]:
    scopes = [Scope(r) for r in rooms or ("r",)]
    page = await index.search(parse_query(q), scopes, **kw)  # type: ignore[arg-type]
    return [hit.key for hit in page.hits]


async def test_words_prefixes_phrases_and_chinese_substrings(index: SearchIndex) -> None:
    await index.apply(
        [
            msg("r", "m1", "离线消息推送 is ready", T0),
            msg("r", "m2", "The Offline mode ships Friday", T0 + 1),
            doc("r", "notes", "Intro\n推送通知的设计\nWe plan the offline queue.", T0 + 2),
        ]
    )
    assert await find(index, "消息推") == ["m1"]
    assert await find(index, "offline") == ["notes", "m2"]  # newest first, any case
    assert await find(index, "OFFL*") == ["notes", "m2"]
    assert await find(index, '"offline mode"') == ["m2"]
    assert await find(index, '"mode offline"') == []
    assert await find(index, "推送") == ["notes", "m1"]  # two characters: the scan
    assert await find(index, "消息") == ["m1"]
    assert await find(index, "推送 offline") == ["notes"]  # a short and a long term, ANDed
    assert await find(index, "ready friday") == []
    assert await find(index, "fline") == ["notes", "m2"]  # a substring of a word


async def test_hits_carry_what_the_api_shows(index: SearchIndex) -> None:
    await index.apply([msg("r", "m1", "hello 离线消息推送 world", T0, author="u1", seq=7)])
    page = await index.search(parse_query("消息推"), [Scope("r")])
    (hit,) = page.hits
    assert (hit.kind, hit.room, hit.key, hit.at, hit.author, hit.seq) == (
        "chat",
        "r",
        "m1",
        T0,
        "u1",
        7,
    )
    marked = [hit.snippet[s:e] for s, e in hit.highlights]
    assert marked == ["消息推"] and "离线消息推送" in hit.snippet
    (short,) = (await index.search(parse_query("消息"), [Scope("r")])).hits
    assert [short.snippet[s:e] for s, e in short.highlights] == ["消息"]


async def test_long_documents_get_a_window_around_the_match(index: SearchIndex) -> None:
    text = "lorem ipsum " * 500 + "the needle sits here " + "dolor sit " * 500
    await index.apply([doc("r", "big", text, T0)])
    for q in ("needle", "ne"):
        (hit,) = (await index.search(parse_query(q), [Scope("r")])).hits
        assert len(hit.snippet) < 200 and hit.snippet.startswith("…") and hit.snippet.endswith("…")
        assert any(hit.snippet[s:e].lower() == q for s, e in hit.highlights)


async def test_an_edit_replaces_the_text_and_a_delete_leaves_nothing(index: SearchIndex) -> None:
    await index.apply([msg("r", "m1", "first draft", T0)])
    await index.apply([msg("r", "m1", "final words", T0, version=T0 + 5)])
    assert await find(index, "draft") == [] and await find(index, "final") == ["m1"]
    await index.apply([msg("r", "m1", "", T0, version=DELETED, deleted=True)])
    assert await find(index, "final") == [] and await find(index, "fi") == []
    assert (await index.counts()).chat == 0 and (await index.counts()).tombstones == 1


async def test_stale_and_repeated_writes_change_nothing(index: SearchIndex) -> None:
    await index.apply([msg("r", "m1", "newest text", T0, version=T0 + 9)])
    await index.apply([msg("r", "m1", "older text", T0, version=T0 + 1)])
    await index.apply([msg("r", "m1", "older text", T0, version=T0 + 9)])  # same version
    assert await find(index, "newest") == ["m1"] and await find(index, "older") == []
    await index.apply([msg("r", "m2", "", T0, version=DELETED, deleted=True)])
    await index.apply([msg("r", "m2", "resurrected?", T0, version=T0 + 100)])
    assert await find(index, "resurrected") == []
    await index.apply([Entry("doc", "r", "d", "", T0 + 50, T0 + 50, deleted=True)])
    await index.apply([doc("r", "d", "read before the delete", T0 + 40)])
    assert await find(index, "read before") == []
    await index.apply([doc("r", "d", "created again", T0 + 60)])
    assert await find(index, "again") == ["d"]


async def test_a_dropped_room_loses_everything_and_refuses_late_writes(index: SearchIndex) -> None:
    await index.apply([msg("gone", "m1", "secret plans", T0), doc("gone", "d", "secret doc", T0)])
    await index.apply([msg("keep", "m2", "secret too", T0)])
    await index.apply([Drop("gone", T0 + 10)])
    assert await find(index, "secret", "gone", "keep") == ["m2"]
    await index.apply([msg("gone", "m3", "secret late", T0 + 5)])  # in flight when dropped
    assert await find(index, "secret", "gone") == []
    await index.apply([msg("gone", "m4", "secret of the new room", T0 + 20)])
    assert await find(index, "secret", "gone") == ["m4"]
    assert await index.rooms() == ["gone", "keep"]


async def test_scopes_kinds_and_doc_lists(index: SearchIndex) -> None:
    await index.apply(
        [
            msg("a", "m1", "budget talk", T0),
            doc("a", "plan", "budget plan", T0 + 1),
            doc("a", "secret", "budget secret", T0 + 2),
            msg("b", "m2", "budget elsewhere", T0 + 3),
        ]
    )
    q = parse_query("budget")

    def keys(page: Page) -> list[str]:
        return [h.key for h in page.hits]

    assert keys(await index.search(q, [Scope("a")])) == ["secret", "plan", "m1"]
    assert keys(await index.search(q, [Scope("a"), Scope("b")])) == ["m2", "secret", "plan", "m1"]
    assert keys(await index.search(q, [Scope("a")], kind="chat")) == ["m1"]
    assert keys(await index.search(q, [Scope("a")], kind="doc")) == ["secret", "plan"]
    only_plan = Scope("a", chat=False, docs=("plan",))
    assert keys(await index.search(q, [only_plan])) == ["plan"]
    assert keys(await index.search(parse_query("bu"), [only_plan])) == ["plan"]
    assert keys(await index.search(q, [Scope("a", chat=True, docs=())])) == ["m1"]
    assert keys(await index.search(q, [Scope("a", chat=False, docs=())])) == []
    assert keys(await index.search(q, [])) == []
    assert await index.doc_names("a") == ["plan", "secret"]


async def test_pages_follow_the_cursor(index: SearchIndex) -> None:
    await index.apply([msg("r", f"m{i}", f"item number {i}", T0 + i) for i in range(7)])
    seen: list[str] = []
    before = None
    for _ in range(4):
        page: Page = await index.search(parse_query("item"), [Scope("r")], before=before, limit=3)
        seen += [h.key for h in page.hits]
        before = page.next_before
        if before is None:
            break
    assert seen == [f"m{i}" for i in reversed(range(7))]


async def test_a_short_query_scans_a_bounded_window(index: SearchIndex) -> None:
    entries = [msg("r", f"m{i}", "filler", T0 + i) for i in range(SCAN_ROWS + 5)]
    entries[0] = msg("r", "m0", "the 消息 is old", T0)
    await index.apply(entries)
    first = await index.search(parse_query("消息"), [Scope("r")])
    assert first.hits == [] and first.next_before is not None  # the window ended: go on
    second = await index.search(parse_query("消息"), [Scope("r")], before=first.next_before)
    assert [h.key for h in second.hits] == ["m0"] and second.next_before is None
    assert await find(index, "消息 old") == ["m0"]  # with a long term: the index finds it


async def test_hostile_terms_are_plain_text(index: SearchIndex) -> None:
    await index.apply(
        [
            msg("r", "m1", 'she said "NEAR(a b)" and text:col * OR AND', T0),
            msg("r", "m2", "100% of_them", T0 + 1),
        ]
    )
    assert await find(index, '"NEAR(a b)"') == ["m1"]
    assert await find(index, "text:col") == ["m1"]
    assert await find(index, "OR AND") == ["m1"]
    assert await find(index, '""""') == ["m1"]  # a phrase of one quote
    assert await find(index, "0%") == ["m2"] and await find(index, "f_") == ["m2"]
    assert await find(index, "%") == ["m2"] and await find(index, "_") == ["m2"]  # not "any"


async def test_a_query_past_its_deadline_is_interrupted(index: SearchIndex) -> None:
    await index.apply([msg("r", f"m{i}", f"common words {i}", T0 + i) for i in range(300)])
    with pytest.raises(QueryTooSlow):
        await index.search(parse_query("zz"), [Scope("r")], deadline=0.0)


async def test_counts_and_the_clean_flag_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "x.search.db"
    index = SQLiteIndex(path)
    state = await index.open()
    assert not state.complete and not state.clean  # new: never built
    await index.apply([msg("r", "m1", "hello there", T0), doc("r", "d", "", T0)])
    await index.set_complete(True)
    await index.close(pending_docs=[("r", "d")])
    assert path.stat().st_mode & 0o777 == 0o600
    index = SQLiteIndex(path)
    state = await index.open()
    assert state.clean and state.complete and state.pending_docs == (("r", "d"),)
    counts = await index.counts()
    assert (counts.chat, counts.docs, counts.tombstones) == (1, 1, 0)
    await index.close()  # a crash would skip this: the next open says "not clean"
    index = SQLiteIndex(path)
    assert (await index.open()).pending_docs == ()
    await index.close()


async def test_a_corrupt_index_is_moved_aside_and_started_anew(tmp_path: Path) -> None:
    path = tmp_path / "x.search.db"
    path.write_bytes(b"this is not a database, whatever it was" * 100)
    index = SQLiteIndex(path)
    state = await index.open()
    assert state.new and not state.complete
    await index.apply([msg("r", "m1", "works again", T0)])
    assert await find(index, "again") == ["m1"]
    await index.close()
    assert set_aside(tmp_path).startswith(b"this is not a database")


def set_aside(directory: Path) -> bytes:
    (aside,) = directory.glob("x.search.db.corrupt-*")
    return aside.read_bytes()


def test_plans_walk_newest_first_without_sorting(tmp_path: Path) -> None:
    """The plans the latency depends on: FTS5 drives and yields ids in order; a scan of one
    room reads its index backwards; a scan of many rooms walks the table by id. None sorts."""
    from collab.search.sqlite import SCHEMA
    from collab.search.sqlsearch import run_search

    conn = sqlite3.connect(tmp_path / "plan.db")
    conn.executescript(SCHEMA)
    for q in ("word", "wo", "word wo"):
        for scopes in ([Scope("a")], [Scope("a"), Scope("b")], [Scope("a", docs=("d",))]):
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            run_search(conn, parse_query(q), scopes, None, None, 20)
            conn.set_trace_callback(None)
            selects = [s for s in statements if s.startswith("SELECT")]  # not FTS5's own
            assert selects
            for sql in selects:
                plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
                assert "TEMP B-TREE" not in plan, (q, scopes, plan)
                if "MATCH" in sql:
                    assert plan.startswith("SCAN fts VIRTUAL TABLE"), plan
                elif len(scopes) == 1:
                    assert "entries_by_room" in plan, plan
    conn.close()


async def test_the_live_messages_of_a_room_in_id_pages(index: SearchIndex) -> None:
    """What a rebuild checks against the table: live chat entries only, paged by id."""
    await index.apply(
        [
            msg("r", "m1", "one", T0, seq=1),
            msg("r", "m2", "two", T0 + 1, seq=2),
            msg("r", "m3", "gone", T0 + 2, seq=3, version=DELETED, deleted=True),
            msg("r", "m4", "four", T0 + 3, seq=4),
            msg("other", "m5", "elsewhere", T0 + 4, seq=1),
            doc("r", "notes", "a doc", T0 + 5),
        ]
    )
    first = await index.messages("r", 0, 2)
    assert [(seq, key) for _, seq, key in first] == [(1, "m1"), (2, "m2")]
    rest = await index.messages("r", first[-1][0], 2)
    assert [(seq, key) for _, seq, key in rest] == [(4, "m4")]
    assert await index.messages("r", rest[-1][0], 2) == []
