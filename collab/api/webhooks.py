"""Outgoing webhooks of a room (``/rooms/{room}/webhooks``), managed by its owners.

``POST`` registers an endpoint ``{"url", "events"}`` (events from ``collab.webhooks.EVENTS``,
or ``["*"]``): the URL must pass the SSRF rules now (``collab.webhooks.targets``; they are
checked again at every attempt), and the answer carries the signing secret once. ``GET`` lists
endpoints with their health (consecutive failures, an open circuit, and why one was disabled);
``PATCH {"events"?, "enabled": true}`` changes the events or enables a disabled endpoint
again; ``DELETE`` removes it (its pending deliveries fail). Each endpoint's deliveries are
listed newest first with their state, and each delivery's attempts (status, latency, error);
``POST .../deliveries/{id}/redeliver`` sends one again, with a new day of retries.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab.api import access, parsing
from collab.api.handler import api_endpoint
from collab.auth.principal import Principal
from collab.errors import BadRequest, NotFound
from collab.meta import Attempt, Delivery, Endpoint, Role
from collab.services import services
from collab.webhooks import ALL, EVENTS, new_secret, resolve

MAX_ENDPOINTS = 20
TOO_MANY = f"a room has at most {MAX_ENDPOINTS} webhooks"
NO_DM_WEBHOOKS = "webhooks are not added to direct messages"


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    h = endpoint.health
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "created_by": endpoint.created_by,
        "created_at": endpoint.created_at,
        "enabled": h.disabled_at is None,
        "failures": h.failures,
        "failing_since": h.failing_since,
        "circuit_open_until": h.open_until,
        "disabled_at": h.disabled_at,
        "disabled_reason": h.disabled_reason,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event": delivery.event,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "created_at": delivery.created_at,
        "next_attempt_at": delivery.due if delivery.state == "pending" else None,
        "finished_at": delivery.finished_at,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "n": attempt.n,
        "at": attempt.at,
        "status": attempt.status,
        "latency": round(attempt.latency, 4),
        "error": attempt.error,
    }


def _events(body: dict[str, Any], required: bool) -> tuple[str, ...] | None:
    raw = body.get("events")
    if raw is None and not required:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise BadRequest(f"'events' must be a list of: {', '.join(EVENTS)} (or ['*'])")
    unknown = [e for e in raw if e not in EVENTS and e != ALL]
    if unknown:
        raise BadRequest(f"unknown event {unknown[0][:40]!r}")
    return tuple(dict.fromkeys(raw))


async def _owner(request: Request) -> tuple[Principal, str]:
    principal = await access.require_principal(request, personal=True)
    room_id = parsing.room_param(request)
    await access.require_role_outside_dm(request, principal, room_id, Role.owner, NO_DM_WEBHOOKS)
    return principal, room_id


async def _endpoint(request: Request, room_id: str) -> Endpoint:
    found = await services(request).meta.get_webhook(room_id, str(request.path_params["hook"]))
    if found is None:
        raise NotFound("no such webhook")
    return found


async def _delivery(request: Request, endpoint: Endpoint) -> Delivery:
    delivery_id = str(request.path_params["delivery"])
    found = await services(request).meta.get_webhook_delivery(endpoint.id, delivery_id)
    if found is None:
        raise NotFound("no such delivery")
    return found


@api_endpoint
async def create_webhook(request: Request) -> Response:
    """Register an outgoing webhook (owners); its signing secret is in this answer only."""
    principal, room_id = await _owner(request)
    body = await parsing.read_json(request)
    url = parsing.get_field(body, "url", str)
    if url is None:
        raise BadRequest("'url' is required")
    events = _events(body, required=True)
    assert events is not None
    shared = services(request)
    if len(await shared.meta.list_webhooks(room_id)) >= MAX_ENDPOINTS:  # before resolving
        raise BadRequest(TOO_MANY)
    dispatcher = shared.webhooks.dispatcher
    await resolve(url, allow_http=dispatcher.allow_http, allowed=dispatcher.allowed)
    endpoint = Endpoint(
        id=uuid.uuid4().hex,
        room_id=room_id,
        url=url,
        events=events,
        secret=new_secret(),
        created_by=principal.user_id,
        created_at=time.time(),
    )
    if not await shared.meta.create_webhook(endpoint, max_endpoints=MAX_ENDPOINTS):
        raise BadRequest(TOO_MANY)  # the cap, counted again in the insert's step
    await access.audit(
        request, principal, "webhook.create", room_id=room_id, target=endpoint.id, events=events
    )
    return JSONResponse({**endpoint_json(endpoint), "secret": endpoint.secret}, status_code=201)


@api_endpoint
async def list_webhooks(request: Request) -> Response:
    """The room's outgoing webhooks and their health (owners)."""
    _, room_id = await _owner(request)
    found = await services(request).meta.list_webhooks(room_id)
    page, cursor = parsing.paginate(request, found, lambda e: [e.created_at, e.id])
    return parsing.page_response([endpoint_json(e) for e in page], cursor)


@api_endpoint
async def get_webhook(request: Request) -> Response:
    """One outgoing webhook, with why it was disabled if it was (owners)."""
    _, room_id = await _owner(request)
    return JSONResponse(endpoint_json(await _endpoint(request, room_id)))


@api_endpoint
async def update_webhook(request: Request) -> Response:
    """Change its events, or enable it again after it was disabled (owners)."""
    principal, room_id = await _owner(request)
    endpoint = await _endpoint(request, room_id)
    body = await parsing.read_json(request)
    events = _events(body, required=False)
    enable = parsing.get_field(body, "enabled", bool) is True
    shared = services(request)
    updated = await shared.meta.update_webhook(room_id, endpoint.id, events=events, enable=enable)
    if updated is None:
        raise NotFound("no such webhook")
    await access.audit(
        request, principal, "webhook.update", room_id=room_id, target=endpoint.id, enable=enable
    )
    shared.webhooks.dispatcher.wake()
    return JSONResponse(endpoint_json(updated))


@api_endpoint
async def delete_webhook(request: Request) -> Response:
    """Remove an outgoing webhook (owners); its pending deliveries fail."""
    principal, room_id = await _owner(request)
    endpoint = await _endpoint(request, room_id)
    await services(request).meta.delete_webhook(room_id, endpoint.id, time.time())
    await access.audit(request, principal, "webhook.delete", room_id=room_id, target=endpoint.id)
    return Response(status_code=204)


@api_endpoint
async def list_deliveries(request: Request) -> Response:
    """The webhook's deliveries, newest first, with their state (owners)."""
    _, room_id = await _owner(request)
    endpoint = await _endpoint(request, room_id)
    limit = parsing.int_param(request, "limit", parsing.DEFAULT_LIMIT, 1, parsing.MAX_LIMIT)
    cursor = parsing.decode_cursor(request.query_params.get("cursor"))
    before, before_id = None, None
    if cursor is not None:
        # [created_at, id] of the page's last delivery (a bare [created_at]: an older cursor).
        if not 1 <= len(cursor) <= 2 or not isinstance(cursor[0], int | float):
            raise BadRequest("bad cursor")
        if len(cursor) == 2 and not (isinstance(cursor[1], str) and len(cursor[1]) <= 128):
            raise BadRequest("bad cursor")
        before = float(cursor[0])
        before_id = cursor[1] if len(cursor) == 2 else None
    meta = services(request).meta
    found = await meta.list_webhook_deliveries(endpoint.id, limit + 1, before, before_id)
    page = found[:limit]
    next_cursor = None
    if len(found) > limit:
        next_cursor = parsing.encode_cursor([page[-1].created_at, page[-1].id])
    return parsing.page_response([delivery_json(d) for d in page], next_cursor)


@api_endpoint
async def list_attempts(request: Request) -> Response:
    """One delivery's attempts: when, the answer's status, latency, error (owners)."""
    _, room_id = await _owner(request)
    delivery = await _delivery(request, await _endpoint(request, room_id))
    attempts = await services(request).meta.list_webhook_attempts(delivery.id)
    return JSONResponse({**delivery_json(delivery), "items": [attempt_json(a) for a in attempts]})


@api_endpoint
async def redeliver(request: Request) -> Response:
    """Send a delivery again now, with a new day of retries (owners)."""
    principal, room_id = await _owner(request)
    endpoint = await _endpoint(request, room_id)
    delivery = await _delivery(request, endpoint)
    shared = services(request)
    again = await shared.meta.redeliver_webhook(endpoint.id, delivery.id, time.time())
    if again is None:
        raise NotFound("no such delivery")
    await access.audit(request, principal, "webhook.redeliver", room_id=room_id, target=delivery.id)
    shared.webhooks.dispatcher.wake()
    return JSONResponse(delivery_json(again), status_code=202)
