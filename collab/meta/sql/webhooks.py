"""Outgoing webhooks: endpoints, the outbox (claimed in one write transaction that nothing
interleaves with, so two workers, on one node or several, never claim one delivery; on
PostgreSQL the claim also skips rows another node is claiming) and its attempts.

``enqueue_outbox`` is a message write's share (``collab.meta.sql.messages``): it runs inside
that write's transaction, under the room's chat ``serial`` key (READ COMMITTED on PostgreSQL,
where an endpoint's deletion stays SERIALIZABLE, as every other webhook write). So on
PostgreSQL a chat write racing an endpoint's deletion may commit a delivery to it that the
deletion did not see to fail: it stays pending, but is never claimed nor due (both only join
live endpoints), nor listed (a deleted endpoint is not found), and the next purge fails it
(``collab.meta.purge``; a statement-level check at the insert would not close the race in
READ COMMITTED, where the deletion's own snapshot still misses the insert). A retry recorded
for a delivery whose endpoint was deleted while the attempt was in flight is recorded as
failed instead, so no attempt makes a deleted endpoint's delivery pending again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from collab.meta.messages import Message, WebhookOutbox
from collab.meta.sql.base import SqlKind, Tx
from collab.meta.webhooks import (
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    Health,
    deliveries_for,
)

_ENDPOINT = (
    "id, room_id, url, events, secret, created_by, created_at,"
    " failures, failing_since, open_until, disabled_at, disabled_reason"
)
_DELIVERY = (
    "id, endpoint_id, room_id, event, payload, created_at, window_start, due, attempts,"
    " state, finished_at"
)
_PREFIXED = ", ".join("d." + c.strip() for c in _DELIVERY.split(","))
_LIVE = "NOT e.deleted AND e.disabled_at IS NULL"


def _endpoint(row: tuple[Any, ...]) -> Endpoint:
    health = Health(row[7], row[8], row[9], row[10], row[11])
    events = tuple(json.loads(row[3]))
    return Endpoint(row[0], row[1], row[2], events, row[4], row[5], row[6], health)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row)


def _live_endpoints(db: Tx, room_id: str) -> list[Endpoint]:
    rows = db.execute(
        f"SELECT {_ENDPOINT} FROM webhook_endpoints e WHERE room_id=? AND {_LIVE}"
        " ORDER BY created_at, id",
        (room_id,),
    ).fetchall()
    return [_endpoint(row) for row in rows]


def _enqueue(
    db: Tx,
    endpoints: list[Endpoint],
    event: str,
    payload: str,
    now: float,
    ids: Iterator[str],
) -> list[Delivery]:
    """``deliveries_for`` those endpoints, inserted by ``db``'s transaction."""
    made = deliveries_for(endpoints, event, payload, now, ids)
    for delivery in made:
        db.execute(
            f"INSERT INTO webhook_deliveries ({_DELIVERY}) VALUES ({', '.join('?' * 11)})",
            tuple(delivery.__dict__.values()),
        )
    return made


def enqueue_outbox(db: Tx, outbox: WebhookOutbox, message: Message) -> list[Delivery]:
    """``outbox``'s deliveries of ``message``, inserted by the caller's transaction (nothing
    is built for a room without a live endpoint: one indexed read is all a post pays)."""
    endpoints = _live_endpoints(db, message.room_id)
    if not endpoints:
        return []
    now = outbox.clock()
    ids = iter(outbox.new_id, None)
    made: list[Delivery] = []
    for event, payload in outbox.events(message, now):
        made += _enqueue(db, endpoints, event, payload, now, ids)
    return made


# The claim's picks: the head (the oldest due, then id) of each endpoint that is live, has its
# circuit closed, has none in flight and whose head is due, the oldest heads first. It reads
# one row per live endpoint: its head by ``webhook_deliveries_head``, its lease in flight by
# the partial ``webhook_deliveries_claimed``, never its backlog. (It used to join every due
# delivery to a per-row check of its endpoint's leases and fetch them all: 2,000 pending for
# one recovered endpoint held SQLite's writer 1.4 s per claim, 5,000 held it 8.4 s; then to
# find the endpoints with a due delivery by reading every due delivery: 250,000 pending took
# PostgreSQL ~40 ms per claim, one claim per delivery drained.)
_CLAIM = (
    f"SELECT {_PREFIXED}, {', '.join('e.' + c.strip() for c in _ENDPOINT.split(','))}"
    " FROM webhook_endpoints e"
    " JOIN webhook_deliveries d ON d.id = (SELECT h.id FROM webhook_deliveries h"
    " WHERE h.endpoint_id=e.id AND h.state='pending' ORDER BY h.due, h.id LIMIT 1)"
    f" WHERE {_LIVE} AND (e.open_until IS NULL OR e.open_until<=?) AND d.due<=?"
    " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries x WHERE"
    " x.endpoint_id=e.id AND x.state='pending' AND x.claimed_until>?)"
    " ORDER BY d.due, d.id LIMIT ?"
)


def _lock_picked(
    db: Tx, picked: list[tuple[Delivery, Endpoint]]
) -> list[tuple[Delivery, Endpoint]]:
    """The claim's picks that are its to take: on PostgreSQL those it locks now, skipping any
    another node holds (that endpoint is being claimed there: its delivery is not taken here,
    nor the endpoint's next one). Only the picks are locked, never the rest of the scan: each
    lock is a write into the row, and another claimer would skip them all."""
    if not db.dialect.claim_lock or not picked:
        return picked
    ids = [delivery.id for delivery, _ in picked]
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(
        f"SELECT id FROM webhook_deliveries WHERE id IN ({marks}){db.dialect.claim_lock}",
        ids,
    ).fetchall()
    mine = {str(i) for (i,) in rows}
    return [(delivery, endpoint) for delivery, endpoint in picked if delivery.id in mine]


class SqlWebhooks(SqlKind):
    async def create_webhook(self, endpoint: Endpoint, *, max_endpoints: int | None = None) -> bool:
        h = endpoint.health
        row = (
            endpoint.id,
            endpoint.room_id,
            endpoint.url,
            json.dumps(list(endpoint.events)),
            endpoint.secret,
            endpoint.created_by,
            endpoint.created_at,
            h.failures,
            h.failing_since,
            h.open_until,
            h.disabled_at,
            h.disabled_reason,
        )

        def _create(db: Tx) -> bool:
            # Counted in the insert's transaction: SQLite's one writer, or PostgreSQL's
            # SERIALIZABLE (two nodes' racing registrations conflict; the retry counts again).
            if max_endpoints is not None:
                (count,) = db.execute(
                    "SELECT count(*) FROM webhook_endpoints WHERE room_id=? AND NOT deleted",
                    (endpoint.room_id,),
                ).fetchone()
                if count >= max_endpoints:
                    return False
            db.execute(
                f"INSERT INTO webhook_endpoints ({_ENDPOINT}) VALUES ({', '.join('?' * 12)})", row
            )
            return True

        return await self._write(_create)

    async def get_webhook(self, room_id: str, endpoint_id: str) -> Endpoint | None:
        rows = await self._read(
            f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE id=? AND room_id=? AND NOT deleted",
            (endpoint_id, room_id),
        )
        return _endpoint(rows[0]) if rows else None

    async def list_webhooks(self, room_id: str) -> list[Endpoint]:
        rows = await self._read(
            f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE room_id=? AND NOT deleted"
            " ORDER BY created_at, id",
            (room_id,),
        )
        return [_endpoint(row) for row in rows]

    async def update_webhook(
        self, room_id: str, endpoint_id: str, *, events: tuple[str, ...] | None, enable: bool
    ) -> Endpoint | None:
        def _update(db: Tx) -> Endpoint | None:
            where = "WHERE id=? AND room_id=? AND NOT deleted"
            if events is not None:
                db.execute(
                    f"UPDATE webhook_endpoints SET events=? {where}",
                    (json.dumps(list(events)), endpoint_id, room_id),
                )
            if enable:
                db.execute(
                    "UPDATE webhook_endpoints SET failures=0, failing_since=NULL,"
                    f" open_until=NULL, disabled_at=NULL, disabled_reason=NULL {where}",
                    (endpoint_id, room_id),
                )
            row = db.execute(
                f"SELECT {_ENDPOINT} FROM webhook_endpoints {where}", (endpoint_id, room_id)
            ).fetchone()
            return _endpoint(row) if row else None

        return await self._write(_update)

    async def delete_webhook(self, room_id: str, endpoint_id: str, now: float) -> bool:
        def _delete(db: Tx) -> bool:
            cursor = db.execute(
                "UPDATE webhook_endpoints SET deleted=TRUE"
                " WHERE id=? AND room_id=? AND NOT deleted",
                (endpoint_id, room_id),
            )
            if not cursor.rowcount:
                return False
            db.execute(
                "UPDATE webhook_deliveries SET state='failed', finished_at=?"
                " WHERE endpoint_id=? AND state='pending'",
                (now, endpoint_id),
            )
            return True

        return await self._write(_delete)

    async def enqueue_webhook_event(
        self, room_id: str, event: str, payload: str, now: float, ids: list[str]
    ) -> list[Delivery]:
        def _enqueue_event(db: Tx) -> list[Delivery]:
            return _enqueue(db, _live_endpoints(db, room_id), event, payload, now, iter(ids))

        return await self._write(_enqueue_event)

    async def claim_webhook_deliveries(
        self, now: float, worker: str, lease: float, limit: int
    ) -> list[tuple[Delivery, Endpoint]]:
        def _claim(db: Tx) -> list[tuple[Delivery, Endpoint]]:
            rows = db.execute(_CLAIM, (now, now, now, limit)).fetchall()
            picked = [(_delivery(row[:11]), _endpoint(row[11:])) for row in rows]
            found = _lock_picked(db, picked)
            for delivery, _ in found:
                db.execute(
                    "UPDATE webhook_deliveries SET claimed_by=?, claimed_until=? WHERE id=?",
                    (worker, now + lease, delivery.id),
                )
            return found

        return await self._write(_claim)

    async def record_webhook_attempt(
        self, attempt: Attempt, state: DeliveryState, due: float, health: Health
    ) -> None:
        most = self.dialect.greatest("attempts", "?")

        def _record(db: Tx) -> None:
            row = db.execute(
                "SELECT d.endpoint_id, e.deleted FROM webhook_deliveries d"
                " LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id=?",
                (attempt.delivery_id,),
            ).fetchone()
            if row is None:
                return
            # Its endpoint deleted while the attempt was in flight (the deletion failed it): a
            # retry would leave it pending for an endpoint no claim takes, so it fails.
            gone = row[1] is None or bool(row[1])
            ends: DeliveryState = "failed" if state == "pending" and gone else state
            db.execute(
                "INSERT INTO webhook_attempts (delivery_id, n, at, status, latency, error)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, n) DO UPDATE SET"
                " at=excluded.at, status=excluded.status, latency=excluded.latency,"
                " error=excluded.error",
                (
                    attempt.delivery_id,
                    attempt.n,
                    attempt.at,
                    attempt.status,
                    attempt.latency,
                    attempt.error,
                ),
            )
            finished = attempt.at if ends != "pending" else None
            db.execute(
                f"UPDATE webhook_deliveries SET state=?, due=?, attempts={most},"
                " finished_at=?, claimed_by=NULL, claimed_until=NULL WHERE id=?",
                (ends, due, attempt.n, finished, attempt.delivery_id),
            )
            db.execute(
                "UPDATE webhook_endpoints SET failures=?, failing_since=?, open_until=?,"
                " disabled_at=?, disabled_reason=? WHERE id=?",
                (
                    health.failures,
                    health.failing_since,
                    health.open_until,
                    health.disabled_at,
                    health.disabled_reason,
                    row[0],
                ),
            )

        await self._write(_record)

    async def next_webhook_due(self, now: float) -> float | None:
        # The earliest of ``greatest(due, open_until, claimed_until)`` over the live endpoints'
        # pending deliveries, read per endpoint: the unclaimed ones' earliest is the first
        # unclaimed row of its head index (past the few leased ones), the leased ones are the
        # partial index's. Not every pending delivery: PostgreSQL read a 250,000 backlog in
        # ~36 ms, on each idle turn of the worker (one per delivery while a backlog drains).
        opened = "coalesce(e.open_until, 0)"
        rows = await self._read(
            f"SELECT min({self.dialect.greatest(opened, 'head')}) FROM (SELECT e.open_until,"
            " (SELECT h.due FROM webhook_deliveries h WHERE h.endpoint_id=e.id"
            " AND h.state='pending' AND h.claimed_until IS NULL ORDER BY h.due, h.id LIMIT 1)"
            f" AS head FROM webhook_endpoints e WHERE {_LIVE}) e WHERE head IS NOT NULL"
            f" UNION ALL SELECT min({self.dialect.greatest(opened, 'x.due', 'x.claimed_until')})"
            " FROM webhook_deliveries x JOIN webhook_endpoints e ON e.id = x.endpoint_id"
            f" WHERE x.state='pending' AND x.claimed_until IS NOT NULL AND {_LIVE}",
        )
        found = [r[0] for r in rows if r[0] is not None]
        return min(found) if found else None

    async def list_webhook_deliveries(
        self,
        endpoint_id: str,
        limit: int,
        before: float | None = None,
        before_id: str | None = None,
    ) -> list[Delivery]:
        # After the page's last (created_at, id) in the listing's order; "" ranks below every
        # id, so without one: created before ``before``.
        at = float("inf") if before is None else before
        rows = await self._read(
            f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE endpoint_id=?"
            " AND (created_at<? OR (created_at=? AND id<?))"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (endpoint_id, at, at, before_id or "", limit),
        )
        return [_delivery(row) for row in rows]

    async def get_webhook_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        rows = await self._read(
            f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE id=? AND endpoint_id=?",
            (delivery_id, endpoint_id),
        )
        return _delivery(rows[0]) if rows else None

    async def list_webhook_attempts(self, delivery_id: str) -> list[Attempt]:
        rows = await self._read(
            "SELECT delivery_id, n, at, latency, status, error FROM webhook_attempts"
            " WHERE delivery_id=? ORDER BY n",
            (delivery_id,),
        )
        return [Attempt(*row) for row in rows]

    async def redeliver_webhook(
        self, endpoint_id: str, delivery_id: str, now: float
    ) -> Delivery | None:
        def _again(db: Tx) -> Delivery | None:
            # An attempt in flight keeps its claim (one send at a time per delivery): what it
            # records then stands for this request too; a lapsed claim is cleared.
            db.execute(
                "UPDATE webhook_deliveries SET state='pending', due=?, window_start=?,"
                " finished_at=NULL,"
                " claimed_by=CASE WHEN claimed_until > ? THEN claimed_by END,"
                " claimed_until=CASE WHEN claimed_until > ? THEN claimed_until END"
                " WHERE id=? AND endpoint_id=?",
                (now, now, now, now, delivery_id, endpoint_id),
            )
            row = db.execute(
                f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE id=?", (delivery_id,)
            ).fetchone()
            return _delivery(row) if row and row[1] == endpoint_id else None

        return await self._write(_again)
