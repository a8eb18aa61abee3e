"""``/ws/{room}/{doc}``: admit -> authenticate -> authorize -> join -> read loop -> leave.

The route is ``/ws/{rest:path}`` so a malformed path is still accepted and closed with 4400
(y-websocket >= 3.1 stops retrying on 44xx) instead of falling through to Starlette's 403.
Refusals follow DESIGN.md's table: a foreign Origin on a cookie-authenticated handshake is an
HTTP 403 before accept, as is a client address over its failed-credential budget (HTTP 429);
everything else is accepted and closed with its 44xx code. A caller who is not a member of the
room is closed 4404 "no such room", as for a missing room (the API's 404 for both), so a join
does not tell who may not see a room whether it exists. An admitted socket lives no longer than
the credential behind it (``collab.sync.expiry``), and an access change made while it was still
joining reaches it once joined (``collab.sync.revoked.recheck_joined``; a live stream's
credential likewise: ``collab.sync.feedserve.ended_while_opening``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from collab import logs
from collab.auth.authenticate import Verifier, authenticate
from collab.auth.origin import origin_allowed
from collab.auth.policy import Access, check_doc_quota, doc_access, room_role
from collab.auth.principal import Principal
from collab.db import StoreError
from collab.errors import (
    BadName,
    CollabError,
    Forbidden,
    GenerationMismatch,
    LimitReached,
    NotFound,
    RateLimited,
    RoomFailed,
    TooManyRequests,
    Unauthorized,
    UnsupportedData,
    close_code_for,
    retry_after_header,
)
from collab.meta import AuditEvent, Role
from collab.names import CHAT_DOC, DocKey, is_reserved_doc, parse_doc_path
from collab.ratelimit import Limiter, client_address
from collab.settings import Settings
from collab.store.base import DocumentStore
from collab.sync.admission import ConnectionLimits, LoopLag, Throttle
from collab.sync.expiry import ExpiryTimer
from collab.sync.feedserve import FeedSource, meta_counts, serve_feed
from collab.sync.inline import InlineReader
from collab.sync.livedoc import LiveDoc
from collab.sync.peer import DIRECT_SEND, GONE, WRITE_NOW, DirectSocket, Peer
from collab.sync.readnow import READ_NOW, WAKE, Register
from collab.sync.registry import RoomRegistry
from collab.sync.requests import ChatRequests, SocketRequests
from collab.sync.revoked import recheck_joined

log = logging.getLogger("collab.endpoint")
FEED_PATH = "_me"  # /ws/_me: the user's live stream (collab.sync.feeds), not a room


class SocketServices(Verifier, Protocol):
    """What a socket needs of the app's shared services (``collab.services.Services``)."""

    @property
    def store(self) -> DocumentStore: ...
    @property
    def registry(self) -> RoomRegistry: ...
    @property
    def handshake_limiter(self) -> Limiter: ...
    @property
    def connection_limits(self) -> ConnectionLimits: ...
    @property
    def loop_lag(self) -> LoopLag: ...
    @property
    def chat_requests(self) -> ChatRequests | None: ...


def socket_services(websocket: WebSocket) -> SocketServices:
    shared: SocketServices = websocket.app.state.services
    return shared


async def websocket_endpoint(websocket: WebSocket) -> None:
    state = socket_services(websocket)
    settings = state.settings
    principal: Principal | None = None
    refusal: CollabError | None = None
    epoch = state.registry.access_changes  # access changed after this: recheck once joined
    wait = await state.handshake_limiter.take(client_address(websocket))
    if wait > 0:
        # Before accept, so a reconnect storm costs one HTTP response per attempt.
        headers = {"Retry-After": retry_after_header(wait)}
        await websocket.send_denial_response(
            PlainTextResponse("too many connection attempts", status_code=429, headers=headers)
        )
        return
    try:
        principal = await authenticate(websocket, state)
    except Unauthorized as exc:
        refusal = exc
    except TooManyRequests as exc:
        # Before accept and before the credential is looked at: guessing costs a 429 each.
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
        await websocket.send_denial_response(
            PlainTextResponse(exc.reason, status_code=429, headers=headers)
        )
        return
    except StoreError as exc:
        # The database does not answer (PostgreSQL down or restarting): refused before accept,
        # as an overloaded server is, so the client comes back later; /readyz says 503 too.
        log.warning("handshake refused: the store does not answer: %s", exc)
        await websocket.send_denial_response(
            PlainTextResponse("store unavailable", status_code=503)
        )
        return
    if principal is not None and principal.by_cookie and not origin_allowed(websocket, settings):
        await _refuse_foreign_origin(websocket, state, principal)
        return
    limits = state.connection_limits
    user_id = principal.user_id if principal is not None else None
    status = 503 if state.loop_lag.overloaded else limits.refusal(user_id)
    if status is not None:
        text = "server busy" if status == 503 else "too many open connections for this user"
        await websocket.send_denial_response(PlainTextResponse(text, status_code=status))
        return
    limits.opened(user_id)
    try:
        await _serve(websocket, state, principal, refusal, epoch)
    finally:
        limits.closed(user_id)


async def _refuse_foreign_origin(
    websocket: WebSocket, state: SocketServices, principal: Principal
) -> None:
    origin = websocket.headers.get("origin", "")
    log.warning("refused cookie socket from foreign origin %r", origin[:200])
    await state.meta.record(
        AuditEvent(
            at=time.time(),
            action="origin.refused",
            actor=principal.user_id,
            detail={"origin": origin[:200]},
            ip=websocket.client.host if websocket.client else None,
        )
    )
    await websocket.close(1008)  # before accept: uvicorn answers HTTP 403


async def _serve(
    websocket: WebSocket,
    state: SocketServices,
    principal: Principal | None,
    refusal: CollabError | None,
    epoch: int,
) -> None:
    registry = state.registry
    await websocket.accept()
    if websocket.path_params.get("rest") == FEED_PATH:
        await _serve_feed(websocket, state, principal, refusal, epoch)
        return
    key = parse_doc_path(websocket.path_params.get("rest", ""))
    if key is None:
        await _refuse(websocket, registry, BadName())
        return
    logs.bind(room=key.room, doc=key.doc, user=principal.user_id if principal else None)
    if principal is None:
        await _refuse(websocket, registry, refusal or Unauthorized("credentials required"))
        return
    try:
        live, access = await _open(websocket, state, principal, key)
    except CollabError as exc:
        await _refuse(websocket, registry, exc)
        return
    peer = _peer(websocket, state, principal, access)
    if key.doc == CHAT_DOC and state.chat_requests is not None:
        peer.requests = _chat_requests(websocket, state, state.chat_requests, principal, key, peer)
    logs.bind(peer=peer.id)
    peer.start()  # a sender task runs only while frames wait (collab.sync.peer)
    expiry = ExpiryTimer(peer)
    expiry.start()
    try:
        await live.join(peer)
        if registry.access_changes != epoch:  # not among the sockets a change reached
            await recheck_joined(state.meta, live, peer)
        registry.feeds.presence_changed(key.room)  # who is where
        await read_loop(websocket, live, peer, state.settings)
    except CollabError as exc:
        registry.hooks.refused(exc)
        code, reason = close_code_for(exc)
        log.info("closing peer %s on %s: %s %s", peer.id, key, code, reason, extra={"code": code})
        peer.close(code, reason)
    except Exception:
        log.exception("peer %s on %s failed", peer.id, key)
        peer.close(1011, "internal error")
    finally:
        expiry.cancel()
        live.leave(peer)
        registry.feeds.presence_changed(key.room)
        registry.release(live)
        peer.close(GONE)  # no-op if a close was already asked for; else the client is gone
        await peer.stopped()
        await peer.requests.drain()  # what was asked is carried out, socket or not


def _peer(
    websocket: WebSocket, state: SocketServices, principal: Principal, access: Access
) -> Peer:
    """The admitted socket's outbound side, with what it may do (``access``)."""
    direct = websocket.scope.get(DIRECT_SEND)
    peer = Peer(
        websocket
        if direct is None
        else DirectSocket(direct, websocket.close, websocket.scope.get(WRITE_NOW)),
        max_queue_bytes=state.settings.outbound_queue_bytes,
        send_timeout=state.settings.send_timeout,
        readonly=not access.can_write,
        opted_in=websocket.query_params.get("collab") == "1",
        principal=principal,
        on_slow_consumer=state.registry.hooks.slow_consumer,
    )
    peer.role = access.role  # a recheck compares it with the store (collab.sync.roles)
    return peer


async def _serve_feed(
    websocket: WebSocket,
    state: SocketServices,
    principal: Principal | None,
    refusal: CollabError | None,
    epoch: int,
) -> None:
    """``/ws/_me``: the user's live stream (``collab.sync.feedserve``)."""
    if principal is None:
        await _refuse(websocket, state.registry, refusal or Unauthorized("credentials required"))
        return
    logs.bind(user=principal.user_id, stream="me")
    source = FeedSource(state.meta, state.registry, meta_counts(state.meta))
    await serve_feed(websocket, principal, state.registry, source, state.settings, epoch)


def _chat_requests(
    websocket: WebSocket,
    state: SocketServices,
    handler: ChatRequests,
    principal: Principal,
    key: DocKey,
    peer: Peer,
) -> SocketRequests:
    """The chat socket takes requests (type 101); others answer them ``bad_request``."""
    return SocketRequests(
        handler,
        key.room,
        principal,
        peer.send,
        address=websocket.client.host if websocket.client else None,
        on_refused=state.registry.hooks.refused,
    )


async def _refuse(websocket: WebSocket, registry: RoomRegistry, exc: CollabError) -> None:
    """Close an accepted socket that may not join (counted: a quota refusal, say)."""
    registry.hooks.refused(exc)
    await websocket.close(*close_code_for(exc))


async def _open(
    websocket: WebSocket, state: SocketServices, principal: Principal, key: DocKey
) -> tuple[LiveDoc, Access]:
    """The loaded doc and what this principal may do in it, or a CollabError to close with.

    Nothing is sent or applied before these checks pass. A store that does not answer
    (PostgreSQL down or restarting) closes the socket as a failed load does (1011).
    """
    if not principal.allows(key.room, key.doc):
        raise Forbidden("token not valid for this document")
    registry = state.registry
    try:
        role = await _room_role(state, principal, key.room)
        live = await registry.acquire_current(key)  # other nodes' commits too (read-your-writes)
    except StoreError as exc:
        raise _unavailable(key, exc) from exc
    access = doc_access(role, key.doc)
    try:
        gen = websocket.query_params.get("gen")
        if gen and gen != live.generation:
            # A tab from before a delete, re-create or restore --rollback: it must reload, not
            # merge its state back (DESIGN.md, Storage).
            raise GenerationMismatch()
        if not live.exists and not is_reserved_doc(key.doc):
            if not access.can_write:
                raise NotFound("no such document")
            await check_doc_quota(state.store, state.meta, state.settings, key)
    except BaseException as exc:
        registry.release(live)
        if isinstance(exc, StoreError):
            raise _unavailable(key, exc) from exc
        raise
    return live, access


async def _room_role(state: SocketServices, principal: Principal, room_id: str) -> Role:
    """The principal's role in the room. Not a member: 4404, as for a missing room (the API's
    404 for both), so a join tells nobody outside a room whether it exists; a cap (room
    limit) stays 4403."""
    try:
        return await room_role(state.meta, state.settings, principal, room_id, create=True)
    except LimitReached:
        raise
    except Forbidden:
        raise NotFound("no such room") from None


def _unavailable(key: DocKey, exc: StoreError) -> RoomFailed:
    log.warning("could not open %s: the store does not answer: %s", key, exc)
    return RoomFailed()


async def read_loop(websocket: WebSocket, live: LiveDoc, peer: Peer, settings: Settings) -> None:
    """Hand each frame the client sent to ``live``, in order, until the disconnect.

    Frames that arrive after the server closed the socket are discarded; those of a client
    that went away (its socket found gone by a failed send) are not: whatever it sent before
    its close is handled (``Peer.takes_input``). Raises CollabError to have the peer closed.
    Where the server offers ``READ_NOW``, frames that arrive while the loop waits are handled
    inline, in order (``collab.sync.inline``); the loop still owns the socket.
    """
    throttle = Throttle(
        settings.conn_messages_per_second,
        settings.conn_bytes_per_second,
        message_burst=settings.conn_message_burst,
        byte_burst=settings.conn_byte_burst,
        stall_seconds=settings.conn_stall_seconds,
    )
    register: Register | None = websocket.scope.get(READ_NOW)
    inline = None if register is None else InlineReader(live, peer, throttle)
    if inline is not None and register is not None:
        inline.wake = register(inline.take)
    try:
        while True:
            if inline is not None:
                inline.ready = True  # frames that arrive while it waits: handled inline
            message = await websocket.receive()
            if inline is not None:
                inline.ready = False
                if message is WAKE:  # an inline frame left this for the loop
                    await _pending(inline.wait_done())
                    continue
            if message["type"] == "websocket.disconnect":
                return
            if not peer.takes_input:
                continue  # the server closed it: discard until the close handshake ends
            data = message.get("bytes")
            if data is None:
                raise UnsupportedData()
            await live.handle(peer, data)
            pause = throttle.account(len(data))
            if pause > 0:
                await _pending(RateLimited() if throttle.stalled else pause)
    finally:
        if inline is not None:
            inline.ready = False


async def _pending(pending: BaseException | float | None) -> None:
    """What the read loop does for a frame over the socket's rate, or one that failed."""
    if isinstance(pending, BaseException):
        raise pending
    if pending:
        # Over its rate: stop reading this socket for a while. Nothing is dropped;
        # TCP backpressure slows the client down.
        await asyncio.sleep(pending)
