"""Chat requests (type 101) in-process: the live doc reads them bounded, a socket runs at most
``max_in_flight`` at once off its read loop, and every outcome is one reply (type 102)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest
from pycrdt import Map

from collab.auth.principal import Principal
from collab.errors import (
    CollabError,
    Forbidden,
    HostileInput,
    MessageTooBig,
    ProtocolViolation,
    Rate,
    RoomFailed,
    TooManyRequests,
)
from collab.names import DocKey
from collab.sync.livedoc import LiveDoc
from collab.sync.requests import MAX_IN_FLIGHT, SocketRequests
from collab.wire import framing
from tests.support.frames import chat_replies, chat_request
from tests.sync.conftest import GatedStore, make_peer, sent, settings

pytestmark = pytest.mark.anyio

ALICE = Principal(user_id="u-alice", name="alice", via="api_token")


class Handler:
    """Answers ``{"id", "seq"}`` once ``gate`` is open, or raises what ``fail`` says."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.seen: list[Mapping[str, Any]] = []
        self.fail: BaseException | None = None

    async def handle(
        self, room_id: str, principal: Principal, request: Mapping[str, Any], address: str | None
    ) -> dict[str, Any]:
        self.seen.append(request)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {"id": f"m-{request['client_id']}", "seq": len(self.seen)}


def runner(
    handler: Handler, out: list[bytes], refused: list[CollabError] | None = None
) -> SocketRequests:
    refused = [] if refused is None else refused
    return SocketRequests(
        handler, "r", ALICE, out.append, on_refused=refused.append, max_in_flight=4
    )


async def test_the_chat_doc_hands_requests_to_its_socket_and_opts_the_peer_in() -> None:
    live = await LiveDoc.load(DocKey("r", "chat"), GatedStore(), settings())
    peer, handler, out = make_peer(readonly=True), Handler(), list[bytes]()
    peer.requests = runner(handler, out)
    before = peer.opted_in
    await live.handle(peer, chat_request({"op": "post", "client_id": "c1", "text": "hi"}))
    assert not before and peer.opted_in  # a request is a hello, like a "saved" request
    await peer.requests.drain()
    assert chat_replies(out) == [{"client_id": "c1", "id": "m-c1", "seq": 1}]


async def test_a_doc_without_requests_answers_bad_request() -> None:
    live = await LiveDoc.load(DocKey("r", "notes"), GatedStore(), settings())
    peer = make_peer()
    await live.handle(peer, chat_request({"op": "post", "client_id": "c1", "text": "hi"}))
    [reply] = chat_replies(sent(peer))
    assert reply["client_id"] == "c1" and reply["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    ("frame", "error", "code"),
    [
        (b"\x65\x05{}", ProtocolViolation, 1002),
        (chat_request(b"\xff"), HostileInput, 1007),
        (chat_request(b"[]"), HostileInput, 1007),
        (chat_request(b'{"a":{"b":{"c":{"d":{"e":1}}}}}'), HostileInput, 1007),
        (chat_request(b'{"text":"' + b"x" * (6 * 10 + 4096) + b'"}'), MessageTooBig, 1009),
    ],
)
async def test_malformed_requests_close_with_their_code(
    frame: bytes, error: type[CollabError], code: int
) -> None:
    live = await LiveDoc.load(DocKey("r", "chat"), GatedStore(), settings(max_message_length=10))
    peer, handler, out = make_peer(readonly=True), Handler(), list[bytes]()
    peer.requests = runner(handler, out)
    with pytest.raises(error) as exc:
        await live.handle(peer, frame)
    assert exc.value.close_code == code and not handler.seen and not out


async def test_at_most_max_in_flight_run_and_the_rest_are_told_to_retry() -> None:
    handler, out = Handler(), list[bytes]()
    requests = runner(handler, out)
    handler.gate.clear()
    for n in range(6):
        requests.submit({"op": "post", "client_id": f"c{n}"})
    await asyncio.sleep(0)  # the tasks start
    assert requests.in_flight == 4 and len(handler.seen) == 4
    busy = chat_replies(out)
    assert [r["client_id"] for r in busy] == ["c4", "c5"]
    assert all(r["error"]["code"] == "rate_limited" for r in busy)
    assert all(r["error"]["retry_after"] > 0 for r in busy)
    handler.gate.set()
    await requests.drain()
    done = chat_replies(out)[2:]
    assert sorted(r["client_id"] for r in done) == ["c0", "c1", "c2", "c3"]
    assert all("error" not in r for r in done) and requests.in_flight == 0
    assert MAX_IN_FLIGHT == 16


@pytest.mark.parametrize(
    ("fail", "error"),
    [
        (Forbidden("posting requires the commenter role"), {"code": "forbidden"}),
        (TooManyRequests(Rate.chat, 1.23401), {"code": "rate_limited", "retry_after": 1.235}),
        (RoomFailed(), {"code": "internal", "message": "internal error"}),
        (RuntimeError("bug"), {"code": "internal", "message": "internal error"}),
    ],
)
async def test_every_failure_is_one_reply(
    fail: BaseException, error: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    handler, out, refused = Handler(), list[bytes](), list[CollabError]()
    requests = runner(handler, out, refused)
    handler.fail = fail
    requests.submit({"op": "post", "client_id": "c1"})
    requests.submit({"op": "post", "client_id": {"not": "a string"}})
    await requests.drain()
    replies = chat_replies(out)
    assert [r["client_id"] for r in replies] == ["c1", None]
    for reply in replies:
        assert set(reply) == {"client_id", "error"}
        assert error.items() <= reply["error"].items() and isinstance(
            reply["error"]["message"], str
        )
    assert refused == ([fail, fail] if isinstance(fail, CollabError) else [])
    if isinstance(fail, RuntimeError):
        assert "chat request failed" in caplog.text


async def test_replies_are_type_102_frames_of_compact_json() -> None:
    handler, out = Handler(), list[bytes]()
    requests = runner(handler, out)
    requests.submit({"client_id": "é"})
    await requests.drain()
    body = json.dumps(
        {"client_id": "é", "id": "m-é", "seq": 1}, separators=(",", ":"), ensure_ascii=False
    )
    assert out == [framing.chat_reply(body.encode())]


async def test_a_change_that_adds_nothing_still_waits_for_the_changes_before_it() -> None:
    # A replayed post writes nothing new into the doc, but the post it replays may still be
    # committing: its reply must wait for that commit too, or it would answer a message that
    # a crash could still lose.
    store = GatedStore()
    live = await LiveDoc.load(DocKey("r", "chat"), store, settings())
    store.append_gate.clear()

    def put(doc: Any) -> None:
        doc.get("info", type=Map)["last_seq"] = 1

    def nothing(doc: Any) -> None:
        return None  # what put_message does for a message the doc already shows

    first = await live.author(put)
    replay = await live.author(nothing)
    await asyncio.sleep(0.05)
    assert not first.done() and not replay.done()
    store.append_gate.set()
    await asyncio.wait_for(asyncio.gather(first, replay), 5)
    idle = await live.author(nothing)  # nothing pending: at once
    assert idle.done()
