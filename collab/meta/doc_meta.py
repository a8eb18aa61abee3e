"""Document metadata: a doc's title (which may change; its name stays its URL) and its kind.

The kind says which editor binds the doc (``text``: CodeMirror, ``rich``: Tiptap). Two
bindings write incompatible Yjs structures (and awareness ``cursor`` shapes), so a kind is set
once: changing it is a Conflict. Metadata may exist before the doc's first update is stored
(a doc created in the workspace but not yet written), and goes with its doc and its room.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from collab.errors import LimitReached, Quota

DOC_KINDS = ("text", "rich")


@dataclass(frozen=True)
class DocMeta:
    room_id: str
    name: str
    title: str
    kind: str  # one of DOC_KINDS
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float


def doc_limit() -> LimitReached:
    """The refusal of a doc past ``max_docs_per_room``."""
    return LimitReached(Quota.docs_per_room, "document limit of this room reached")


class DocMetas(Protocol):
    async def get_doc_meta(self, room_id: str, name: str) -> DocMeta | None: ...

    async def list_doc_meta(self, room_id: str) -> list[DocMeta]:
        """The room's doc metadata, by name."""

    async def put_doc_meta(
        self,
        room_id: str,
        name: str,
        *,
        title: str | None,
        kind: str | None,
        by: str,
        max_docs: int | None = None,
        stored: Collection[str] = (),
    ) -> tuple[DocMeta, bool]:
        """Create (title defaults to the name, kind to ``text``) or update the doc's metadata;
        returns it and whether it was created. errors.Conflict when ``kind`` would change.
        An update racing a delete of the doc is ordered before it: the doc stays deleted.

        With ``max_docs``, metadata for a new doc (neither stored nor described) is refused
        (:func:`doc_limit`) when the room has that many docs: the described ones, those named
        in ``stored`` (what the caller found in the document store) and, where the documents
        live in the same database (SQLite, PostgreSQL), those stored there. Counted in the
        insert's own step, so new docs described at once (on several nodes too) cannot
        together pass the cap."""

    async def delete_doc_meta(self, room_id: str, name: str) -> None:
        """Idempotent."""
