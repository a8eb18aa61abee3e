"""``/ws/{room}/{doc}``: authenticate -> authorize -> join -> read loop -> leave.

The route is ``/ws/{rest:path}`` so a malformed path is still accepted and closed with 4400
(y-websocket >= 3.1 stops retrying on 44xx) instead of falling through to Starlette's 403.
Refusals follow DESIGN.md's table: a foreign Origin on a cookie-authenticated handshake is an
HTTP 403 before accept; everything else is accepted and closed with its 44xx code.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from collab import logs
from collab.auth.authenticate import authenticate
from collab.auth.origin import origin_allowed
from collab.auth.policy import check_doc_quota, doc_access, room_role
from collab.auth.principal import Principal
from collab.errors import (
    BadName,
    CollabError,
    Forbidden,
    GenerationMismatch,
    NotFound,
    RateLimited,
    Unauthorized,
    UnsupportedData,
    close_code_for,
)
from collab.limits import Throttle
from collab.meta.base import AuditEvent
from collab.names import is_reserved_doc, parse_doc_path
from collab.peer import Peer
from collab.ratelimit import client_address
from collab.services import Services, services

log = logging.getLogger("collab.endpoint")


async def websocket_endpoint(websocket: WebSocket) -> None:
    shared = services(websocket)
    settings = shared.settings
    principal: Principal | None = None
    refusal: CollabError | None = None
    if not shared.handshake_limiter.allow(client_address(websocket)):
        # Before accept, so a reconnect storm costs one HTTP response per attempt.
        await websocket.send_denial_response(
            PlainTextResponse("too many connection attempts", status_code=429)
        )
        return
    try:
        principal = await authenticate(websocket, shared)
    except Unauthorized as exc:
        refusal = exc
    if principal is not None and principal.by_cookie and not origin_allowed(websocket, settings):
        origin = websocket.headers.get("origin", "")
        log.warning("refused cookie socket from foreign origin %r", origin[:200])
        await shared.meta.record(
            AuditEvent(
                at=time.time(),
                action="origin.refused",
                actor=principal.user_id,
                detail={"origin": origin[:200]},
                ip=websocket.client.host if websocket.client else None,
            )
        )
        await websocket.close(1008)  # before accept: uvicorn answers HTTP 403
        return
    limits = shared.connection_limits
    user_id = principal.user_id if principal is not None else None
    status = 503 if shared.loop_lag.overloaded else limits.refusal(user_id)
    if status is not None:
        text = "server busy" if status == 503 else "too many open connections for this user"
        await websocket.send_denial_response(PlainTextResponse(text, status_code=status))
        return
    limits.opened(user_id)
    try:
        await _serve(websocket, shared, principal, refusal)
    finally:
        limits.closed(user_id)


async def _refuse(websocket: WebSocket, shared: Services, exc: CollabError) -> None:
    """Close an accepted socket that may not join, counting a refusal at a quota."""
    shared.metrics.refusal(exc)
    await websocket.close(*close_code_for(exc))


async def _serve(
    websocket: WebSocket, shared: Services, principal: Principal | None, refusal: CollabError | None
) -> None:
    settings = shared.settings
    registry = shared.registry
    await websocket.accept()
    key = parse_doc_path(websocket.path_params.get("rest", ""))
    if key is None:
        await _refuse(websocket, shared, BadName())
        return
    logs.bind(room=key.room, doc=key.doc, user=principal.user_id if principal else None)
    if principal is None:
        await _refuse(websocket, shared, refusal or Unauthorized("credentials required"))
        return
    try:
        if not principal.allows(key.room, key.doc):
            raise Forbidden("token not valid for this document")
        role = await room_role(shared.meta, settings, principal, key.room, create=True)
        access = doc_access(role, key.doc)
        room = await registry.acquire(key)
    except CollabError as exc:
        await _refuse(websocket, shared, exc)
        return
    gen = websocket.query_params.get("gen")
    if gen and gen != room.generation:
        # A tab from before a delete, re-create or restore --rollback: it must reload, not
        # merge its state back (DESIGN.md, Storage). Nothing was sent or applied yet.
        registry.release(room)
        await _refuse(websocket, shared, GenerationMismatch())
        return
    peer = Peer(
        websocket,
        max_queue_bytes=settings.outbound_queue_bytes,
        send_timeout=settings.send_timeout,
        readonly=not access.can_write,
        opted_in=websocket.query_params.get("collab") == "1",
        principal=principal,
    )
    logs.bind(peer=peer.id)
    peer.on_slow_consumer = shared.metrics.slow_consumer_closes.inc
    if not room.exists and not is_reserved_doc(key.doc):
        try:
            if not access.can_write:
                raise NotFound("no such document")
            await check_doc_quota(shared.store, settings, key.room)
        except CollabError as exc:
            registry.release(room)
            await _refuse(websocket, shared, exc)
            return
    throttle = Throttle(
        settings.conn_messages_per_second,
        settings.conn_bytes_per_second,
        message_burst=settings.conn_message_burst,
        byte_burst=settings.conn_byte_burst,
        stall_seconds=settings.conn_stall_seconds,
    )
    sender = asyncio.get_running_loop().create_task(peer.run_sender())
    try:
        await room.join(peer)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if peer.closing:
                continue  # closing: discard until the close handshake ends
            data = message.get("bytes")
            if data is None:
                raise UnsupportedData()
            await room.handle(peer, data)
            pause = throttle.account(len(data))
            if pause > 0:
                if throttle.stalled:
                    raise RateLimited()
                # Over its rate: stop reading this socket for a while. Nothing is dropped;
                # TCP backpressure slows the client down.
                await asyncio.sleep(pause)
    except CollabError as exc:
        shared.metrics.refusal(exc)
        code, reason = close_code_for(exc)
        log.info("closing peer %s on %s: %s %s", peer.id, key, code, reason, extra={"code": code})
        peer.close(code, reason)
    except Exception:
        log.exception("peer %s on %s failed", peer.id, key)
        peer.close(1011, "internal error")
    finally:
        room.leave(peer)
        registry.release(room)
        peer.close(1006)  # no-op if a close was already asked for; else the client is gone
        await sender
