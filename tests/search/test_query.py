"""The query grammar: what becomes a term, and every malformed query refused with a 400."""

from __future__ import annotations

import pytest

from collab.errors import BadRequest
from collab.search import Term, parse_query
from collab.search.query import MAX_QUERY_CHARS, MAX_TERMS, fts_string, like_pattern
from collab.search.snippets import Snippet, clean_text, from_marked, make_snippet


def test_words_phrases_and_prefixes() -> None:
    q = parse_query('  offline  "push  service"  plan*  "离线 消息"*  消息 ')
    assert q.terms == (
        Term("offline"),
        Term("push  service", phrase=True),
        Term("plan", prefix=True),
        Term("离线 消息", phrase=True, prefix=True),
        Term("消息"),
    )
    assert [t.text for t in q.long_terms] == ["offline", "push  service", "plan", "离线 消息"]
    assert [t.text for t in q.short_terms] == ["消息"]
    assert q.fts_expression() == '"offline" AND "push  service" AND "plan" AND "离线 消息"'


@pytest.mark.parametrize(
    ("raw", "terms"),
    [
        ("NEAR(a b) OR x", ["NEAR(a", "b)", "OR", "x"]),
        ("text:col -x ^y (z)", ["text:col", "-x", "^y", "(z)"]),
        ('"a""b"', ['a"b']),
        ('""""', ['"']),
        ('x"y z"', ["x", "y z"]),
        ("a*b **", ["a*b"]),
        ("\t新年\n快乐", ["新年", "快乐"]),
    ],
)
def test_syntax_is_text(raw: str, terms: list[str]) -> None:
    assert [t.text for t in parse_query(raw).terms] == terms


def test_every_term_is_one_quoted_fts5_string() -> None:
    assert fts_string('say "hi"') == '"say ""hi"""'
    q = parse_query('NEAR("xyz""" why) col:*')
    assert q.fts_expression() == '"NEAR(" AND "xyz""" AND "why)" AND "col:"'


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "nothing to search for"),
        ("   ", "nothing to search for"),
        ("* ** ***", "nothing to search for"),
        ('""', "nothing to search for"),
        ('"open', "unclosed quote"),
        ('a "b" "c', "unclosed quote"),
        ("x" * (MAX_QUERY_CHARS + 1), "longer than"),
        ("a\x00b", "control characters"),
        ("a\x1bb", "control characters"),
        ("a\ue000b", "reserved characters"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), "more than"),
    ],
)
def test_malformed_queries_are_bad_requests(raw: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_query(raw)


def test_like_patterns_are_literal() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_snippets() -> None:
    assert clean_text("a\ue000b\ue001c") == "a\ufffdb\ufffdc"
    marked = from_marked("…the \ue000offline\ue001 queue \ue000off\ue001…")
    assert marked == Snippet("…the offline queue off…", ((5, 12), (19, 22)))
    assert marked.html() == "…the <mark>offline</mark> queue <mark>off</mark>…"
    assert Snippet("<b>&", ((0, 3),)).html() == "<mark>&lt;b&gt;</mark>&amp;"
    short = make_snippet("Go went GO", [("go", True)])
    assert [short.text[s:e] for s, e in short.highlights] == ["Go", "GO"]
    long = make_snippet("x" * 300 + "NEEDLE" + "y" * 300, [("needle", False)], width=40)
    assert long.text.startswith("…") and long.text.endswith("…") and len(long.text) == 42
    assert [long.text[s:e] for s, e in long.highlights] == ["NEEDLE"]
    # İ lowers to two characters: it is kept as it is, so every offset still holds
    assert make_snippet("İstanbul ist", [("ist", False)]).highlights == ((9, 12),)
    assert make_snippet("short", [("zz", True)]) == Snippet("short", ())
