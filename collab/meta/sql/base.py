"""What every record kind's SQL shares, whichever database runs it: the seam to the backend
(``Backend``: run a write transaction, run a read), the transaction's face (``Tx``), the few
spellings that differ between SQLite and PostgreSQL (``Dialect``) and the clock.

Each kind's logic is written once, here in ``collab.meta.sql``, as plain functions of a ``Tx``
in portable SQL (``?`` placeholders, ``TRUE``/``FALSE``, ``ON CONFLICT``, ``RETURNING``): the
SQLite backend (``collab.meta.sqlite``) runs them on its one writer, the PostgreSQL backend
(``collab.meta.postgres``) translates the placeholders and runs them in SERIALIZABLE
transactions, retried when PostgreSQL reports a conflict. Either way a write function sees a
database that nothing else changes while it runs, so read-check-write sequences (redeem an
invite, keep one owner, the next chat seq) are written without locking tricks; a write
function may therefore run more than once and must only touch the database.

Where many writers meet on the same rows (every post into one room's chat), retrying whoever
loses is slow and, past some number of writers, never ends; such writes name a ``serial`` key
instead: writes with the same key run one at a time (on PostgreSQL under an advisory lock, in
READ COMMITTED so each statement sees what the previous holder committed; SQLite's one writer
needs nothing more).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from collab.meta.base import Role

T = TypeVar("T")


class IntegrityError(Exception):
    """A constraint refused a write (a unique key taken), whichever database said so."""


class Cursor(Protocol):
    """What a statement gives back: its rows and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class Dialect:
    """The spellings that differ between the databases; everything else is shared SQL."""

    name: str
    #: the larger of two values per row: SQLite's ``max(a, b)``, PostgreSQL's ``greatest``
    greatest_function: str
    #: ``column = ?`` folding ASCII case only (the memory twin's rule): SQLite's NOCASE
    #: columns compare so already, PostgreSQL calls the migration's ``collab_ascii_fold``
    nocase_template: str
    #: appended to the outbox claim's lock of the deliveries it picked: PostgreSQL's
    #: concurrent claimers skip the rows another node is claiming instead of waiting for it
    #: (SQLite has one writer)
    claim_lock: str = ""
    #: a statement taking a lock on its one parameter (a key) until the transaction ends, for
    #: writes that must commit in the order they draw ids (PostgreSQL's identities are drawn
    #: at the insert, not the commit); "" where writes never overlap (SQLite's one writer)
    key_lock: str = ""

    def greatest(self, *exprs: str) -> str:
        return f"{self.greatest_function}({', '.join(exprs)})"

    def nocase_equals(self, column: str) -> str:
        return self.nocase_template.format(column=column)


class Tx(Protocol):
    """One write transaction: statements in portable SQL with ``?`` placeholders. A refused
    constraint raises ``IntegrityError``."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


class Backend(Protocol):
    """Where the kinds' SQL runs."""

    dialect: Dialect

    async def write(
        self,
        fn: Callable[[Tx], T],
        *,
        serial: str | None = None,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn`` in one transaction that nothing else interleaves with (it may run more
        than once: PostgreSQL retries a transaction that lost a conflict). With ``serial``,
        nothing else with the same key interleaves with it, and only the key guarantees it:
        ``fn``'s reads must then be of rows that only writers of that key change (or ``fn`` is
        one statement, which row locks keep right on their own).

        ``then(result)`` is called on the event loop once ``fn`` succeeded, before ``write``
        returns, in the order of the writes of one ``serial`` key: on SQLite inside the still
        open transaction (what it starts that writes to the same file commits with it;
        ``undo()`` is called if that transaction then fails), on PostgreSQL after the commit
        (``undo`` is then never needed). Neither may raise or wait."""
        ...

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement, outside any write transaction."""
        ...

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``read`` for a statement that finds a few rows by key (SQLite runs it on the event
        loop: cheaper than a worker thread's round trip, see ``collab.db.readers``)."""
        ...


def as_row(record: Any, **extra: Any) -> dict[str, Any]:
    """A record as a table row: roles by name (readable, CHECKed in SQL), plus ``extra``."""
    row = {k: v.name if isinstance(v, Role) else v for k, v in asdict(record).items()}
    return {**row, **extra}


def insert(db: Tx, table: str, row: dict[str, Any]) -> None:
    """Insert ``row`` (column -> value) into ``table``."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


def upsert(db: Tx, table: str, row: dict[str, Any], *, pk: str | tuple[str, ...]) -> None:
    """Insert ``row``, or update every other column of the row with the same ``pk``."""
    keys = (pk,) if isinstance(pk, str) else pk
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    updates = ", ".join(f"{c}=excluded.{c}" for c in row if c not in keys)
    db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        tuple(row.values()),
    )


class SqlKind:
    """The base of each kind's SQL class; a composite store (``SQLiteMetaStore``,
    ``PostgresMetaStore``) inherits every kind, so all of them share its backend and clock."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    @property
    def dialect(self) -> Dialect:
        return self.backend.dialect

    async def _write(
        self,
        fn: Callable[[Tx], T],
        *,
        serial: str | None = None,
        then: Callable[[T], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn`` in one write transaction that nothing else interleaves with (``serial``:
        nothing else of that key, see the module's docstring; ``then``, ``undo``: see
        ``Backend.write``)."""
        return await self.backend.write(fn, serial=serial, then=then, undo=undo)

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self.backend.read(sql, params)

    async def _lookup(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``_read`` for a statement that finds a few rows by key (``Backend.lookup``)."""
        return await self.backend.lookup(sql, params)
