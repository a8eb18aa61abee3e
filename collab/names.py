"""Room and document names: the one alphabet every layer agrees on."""

from __future__ import annotations

import re
from typing import NamedTuple

CHAT_DOC = "chat"  # every room's server-written chat log (collab.chat)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class DocKey(NamedTuple):
    """A document's address: ``/ws/{room}/{doc}``."""

    room: str
    doc: str

    def __str__(self) -> str:
        return f"{self.room}/{self.doc}"


def is_valid_name(name: str) -> bool:
    return NAME_RE.fullmatch(name) is not None


def is_valid_doc_name(name: str) -> bool:
    """A doc name, or ``_`` + one: the server's reserved docs (``_meta``) are addressable."""
    return is_valid_name(name[1:] if name.startswith("_") else name)


def parse_doc_path(rest: str) -> DocKey | None:
    """``room/doc`` from the WebSocket path, or None when it is not exactly two valid names."""
    parts = rest.split("/")
    if len(parts) != 2 or not is_valid_name(parts[0]) or not is_valid_doc_name(parts[1]):
        return None
    return DocKey(parts[0], parts[1])


def is_reserved_doc(doc: str) -> bool:
    """``chat`` and ``_*`` docs are written by the server only."""
    return doc == CHAT_DOC or doc.startswith("_")


def new_docs_key(room: str) -> str:
    """The key that serialises the room's new docs across nodes (a PostgreSQL advisory lock):
    a first update creating a doc and new doc metadata both take it, so the room's
    ``max_docs_per_room`` count and the insert are one step (``collab.store.postgres``)."""
    return f"new-docs:{room}"
