"""Snippets: a short window of a result's text around what matched, and where the matches are.

FTS5's ``snippet()`` marks matches with two private-use characters (``START``/``END``), which
``from_marked`` turns into plain text plus highlight ranges; indexed text never contains them
(``clean_text``). Where FTS5 did not do the matching (a query shorter than a trigram, the memory
index) ``make_snippet`` cuts the same kind of window in Python. A snippet is shown three ways:
plain text, highlight ranges as ``[start, end)`` offsets in code points, and HTML (escaped, the
matches in ``<mark>``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

START = "\ue000"
END = "\ue001"
ELLIPSIS = "…"
WIDTH = 64  # characters of context, about what snippet(..., 64) shows of a trigram index
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: tuple[tuple[int, int], ...] = ()

    def html(self) -> str:
        out: list[str] = []
        at = 0
        for start, end in self.highlights:
            out.append(html.escape(self.text[at:start]))
            out.append(f"<mark>{html.escape(self.text[start:end])}</mark>")
            at = end
        out.append(html.escape(self.text[at:]))
        return "".join(out)


def clean_text(text: str) -> str:
    """Text as it is indexed: the marker characters replaced, so a snippet's markers are ours."""
    if START in text or END in text:
        return text.replace(START, "\ufffd").replace(END, "\ufffd")
    return text


def from_marked(marked: str) -> Snippet:
    """Plain text and highlight ranges from a snippet() string with START/END markers."""
    out: list[str] = []
    highlights: list[tuple[int, int]] = []
    length = 0
    opened: int | None = None
    for char in marked:
        if char == START:
            opened = length
        elif char == END:
            if opened is not None and length > opened:
                highlights.append((opened, length))
            opened = None
        else:
            out.append(char)
            length += 1
    return Snippet("".join(out), tuple(merge_ranges(highlights)))


def fold(text: str) -> str:
    """Lower case, character by character (the same length as ``text``, so offsets hold)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def fold_ascii(text: str) -> str:
    """Only A-Z lowered: what SQLite's LIKE ignores the case of."""
    return text.translate(_ASCII_LOWER)


def find_all(haystack: str, needle: str) -> list[tuple[int, int]]:
    found = []
    at = haystack.find(needle)
    while at >= 0:
        found.append((at, at + len(needle)))
        at = haystack.find(needle, at + 1)
    return found


def make_snippet(text: str, needles: Sequence[tuple[str, bool]], width: int = WIDTH) -> Snippet:
    """A window of ``text`` around the first match of any needle, every match in it marked.

    ``needles`` are (already folded text, ascii_only): long terms fold like the trigram index
    (any letter's case), short ones like LIKE (A-Z only).
    """
    folded = fold(text)
    ascii_folded = fold_ascii(text)
    matches: list[tuple[int, int]] = []
    for needle, ascii_only in needles:
        if needle:
            matches += find_all(ascii_folded if ascii_only else folded, needle)
    matches.sort()
    first = matches[0][0] if matches else 0
    start = max(0, first - width // 4)
    end = min(len(text), start + width)
    if matches:
        end = max(end, min(len(text), matches[0][1]))
    body = text[start:end]
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    inside = [
        (max(s, start) + shift, min(e, end) + shift) for s, e in matches if s < end and e > start
    ]
    return Snippet(prefix + body + suffix, tuple(merge_ranges(inside)))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching ranges joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
