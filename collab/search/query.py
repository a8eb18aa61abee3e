"""A search query, parsed by us: user input never reaches FTS5's MATCH as it was typed.

Grammar (docs/search.md): terms separated by white space, all of which must match (AND);
``"a phrase"`` is one term, white space included (``""`` inside it is a quote); a trailing
``*`` (``plan*``, ``"a b"*``) is accepted as a prefix. Every term matches as a substring,
case-insensitively, because the index is a trigram index: a word already matches inside
longer words, so ``plan*`` and ``plan`` find the same. Nothing else is syntax: ``OR``,
``NEAR(``, ``col:``, ``(``, ``-`` and ``^`` are searched as text. A malformed query (empty,
too long, an unclosed quote, control characters, too many terms) is ``BadRequest`` with a
message saying what to fix.

Terms of at least ``TRIGRAM`` characters go to FTS5, each one a quoted string (``"`` doubled
inside), so no input can be read as FTS5 syntax; shorter ones (one or two CJK characters,
``go``) cannot be looked up in a trigram index and are matched by a bounded scan instead
(``like_pattern``).
"""

from __future__ import annotations

from dataclasses import dataclass

from collab.errors import BadRequest

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
TRIGRAM = 3  # the trigram tokenizer indexes every run of 3 characters


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False  # written in quotes
    prefix: bool = False  # written with a trailing * (the same match: see the module doc)

    @property
    def short(self) -> bool:
        """Shorter than a trigram: no index lookup can find it."""
        return len(self.text) < TRIGRAM


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    @property
    def long_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.short)

    @property
    def short_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.short)

    def fts_expression(self) -> str:
        """The FTS5 MATCH expression of the long terms: each a quoted string, ANDed."""
        return " AND ".join(fts_string(t.text) for t in self.long_terms)


def fts_string(text: str) -> str:
    """An FTS5 string literal: whatever ``text`` holds, FTS5 reads it as one string."""
    return '"' + text.replace('"', '""') + '"'


def like_pattern(text: str) -> str:
    """A LIKE pattern (``ESCAPE '\\'``) matching ``text`` anywhere, taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check_characters(raw: str) -> None:
    for char in raw:
        if char.isspace():
            continue
        if ord(char) < 0x20 or ord(char) == 0x7F or 0xD800 <= ord(char) <= 0xDFFF:
            raise BadRequest("the query contains control characters")
        if 0xE000 <= ord(char) <= 0xE001:  # the snippet markers (collab.search.snippets)
            raise BadRequest("the query contains reserved characters")


def _phrase(raw: str, i: int) -> tuple[str, int]:
    """The phrase starting at ``raw[i]`` (just after its opening quote) and where it ends;
    inside it ``""`` stands for one quote."""
    out: list[str] = []
    while True:
        end = raw.find('"', i)
        if end < 0:
            raise BadRequest('the query has an unclosed quote (")')
        out.append(raw[i:end])
        if raw.startswith('""', end):
            out.append('"')
            i = end + 2
            continue
        return "".join(out), end + 1


def parse_query(raw: str) -> Query:
    """The terms of ``raw``; BadRequest when it is malformed (see the module doc)."""
    if len(raw) > MAX_QUERY_CHARS:
        raise BadRequest(f"the query is longer than {MAX_QUERY_CHARS} characters")
    _check_characters(raw)
    terms: list[Term] = []
    i, n = 0, len(raw)
    while i < n:
        char = raw[i]
        if char.isspace():
            i += 1
            continue
        if char == '"':
            text, i = _phrase(raw, i + 1)
            prefix = i < n and raw[i] == "*"
            while i < n and raw[i] == "*":
                i += 1
            if text.strip():
                terms.append(Term(text, phrase=True, prefix=prefix))
            continue
        start = i
        while i < n and not raw[i].isspace() and raw[i] != '"':
            i += 1
        word = raw[start:i]
        text = word.rstrip("*")
        if text:
            terms.append(Term(text, prefix=text != word))
    if not terms:
        raise BadRequest("the query has nothing to search for")
    if len(terms) > MAX_TERMS:
        raise BadRequest(f"the query has more than {MAX_TERMS} terms")
    return Query(tuple(terms))
