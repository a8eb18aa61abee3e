"""Document metadata: one row per (room, doc name)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from collab.errors import Conflict
from collab.meta.doc_meta import DocMeta, doc_limit
from collab.meta.sql.base import SqlKind, Tx, as_row, insert
from collab.names import new_docs_key

_COLUMNS = "room_id, name, title, kind, created_by, created_at, updated_by, updated_at"


def _meta(row: tuple[Any, ...]) -> DocMeta:
    return DocMeta(*row)


def _room_has_space(
    db: Tx, room_id: str, name: str, max_docs: int, stored: Collection[str]
) -> bool:
    """Whether ``name`` is a doc of the room already, or the room may gain one more: its docs
    stored (in this same database, read in the caller's transaction: SQLite's one writer, or
    PostgreSQL's under the room's new-docs lock) or described, and the ``stored`` names the
    caller gives."""
    rows = db.execute(
        "SELECT name FROM docs WHERE room=? UNION SELECT name FROM doc_meta WHERE room_id=?",
        (room_id, room_id),
    ).fetchall()
    names = {str(found) for (found,) in rows} | set(stored)
    return name in names or len(names) < max_docs


class SqlDocMetas(SqlKind):
    async def get_doc_meta(self, room_id: str, name: str) -> DocMeta | None:
        rows = await self._lookup(
            f"SELECT {_COLUMNS} FROM doc_meta WHERE room_id=? AND name=?", (room_id, name)
        )
        return _meta(rows[0]) if rows else None

    async def list_doc_meta(self, room_id: str) -> list[DocMeta]:
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM doc_meta WHERE room_id=? ORDER BY name", (room_id,)
        )
        return [_meta(row) for row in rows]

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
        now = self.clock()

        def _put(db: Tx) -> tuple[DocMeta, bool]:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM doc_meta WHERE room_id=? AND name=?", (room_id, name)
            ).fetchone()
            if row is None:
                if max_docs is not None and not _room_has_space(
                    db, room_id, name, max_docs, stored
                ):
                    raise doc_limit()
                meta = DocMeta(room_id, name, title or name, kind or "text", by, now, by, now)
                insert(db, "doc_meta", as_row(meta))
                return meta, True
            current = _meta(row)
            if kind is not None and kind != current.kind:
                raise Conflict("a document's kind is set once")
            meta = dataclasses.replace(
                current,
                title=title if title is not None else current.title,
                updated_by=by,
                updated_at=now,
            )
            # An update, never an insert: a delete (not under the lock) that committed since
            # the read has the row gone, and this write is then ordered before it (the row
            # stays gone; an upsert would bring the deleted doc's metadata back).
            db.execute(
                "UPDATE doc_meta SET title=?, updated_by=?, updated_at=?"
                " WHERE room_id=? AND name=?",
                (meta.title, by, now, room_id, name),
            )
            return meta, False

        # Serial with the room's other new docs (a first update's too, on PostgreSQL: the
        # document store takes the same advisory lock), so the count holds across nodes.
        return await self._write(_put, serial=new_docs_key(room_id))

    async def delete_doc_meta(self, room_id: str, name: str) -> None:
        await self._write(
            lambda db: db.execute(
                "DELETE FROM doc_meta WHERE room_id=? AND name=?", (room_id, name)
            )
        )
