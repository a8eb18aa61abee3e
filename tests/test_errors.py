"""The error tree maps each class to its close code, HTTP status and JSON body, in one place."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.responses import Response

from collab import errors
from collab.errors import (
    BadInput,
    BadName,
    BadRequest,
    BodyTimeout,
    BodyTooLarge,
    CollabError,
    Conflict,
    DocTooLarge,
    FileTooLarge,
    Forbidden,
    GenerationMismatch,
    HostileInput,
    LimitReached,
    LoginRefused,
    MessageTooBig,
    MessageTooLong,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    ProtocolViolation,
    Quota,
    Rate,
    RateLimited,
    Refusal,
    RoomFailed,
    TokenExpired,
    TooManyRequests,
    Unauthorized,
    UnsupportedData,
    close_code_for,
    error_response,
    json_error,
)

# class, close code (None: never closes a socket), HTTP status (None: never answers HTTP), code
TREE: list[tuple[CollabError, int | None, int | None, str]] = [
    (Refusal(), 4403, 403, "forbidden"),
    (BadName(), 4400, 400, "bad_name"),
    (BadRequest(), None, 400, "bad_request"),
    (Unauthorized(), 4401, 401, "unauthorized"),
    (TokenExpired(), 4001, 401, "token_expired"),
    (Forbidden(), 4403, 403, "forbidden"),
    (LimitReached(Quota.rooms_per_user), 4403, 403, "limit_reached"),
    (NotFound(), 4404, 404, "not_found"),
    (MethodNotAllowed(), None, 405, "method_not_allowed"),
    (Conflict(), None, 409, "conflict"),
    (TooManyRequests(Rate.rooms, 2.5), None, 429, "rate_limited"),
    (GenerationMismatch(), 4409, 409, "generation_mismatch"),
    (DocTooLarge(), 4413, 413, "too_large"),
    (BodyTooLarge(), None, 413, "body_too_large"),
    (BodyTimeout(), None, 408, "body_timeout"),
    (FileTooLarge(), None, 413, "too_large"),
    (MessageTooLong(), None, 413, "too_large"),
    (LoginRefused("invalid_state", "no state"), None, 400, "invalid_state"),
    (BadInput(), 1007, None, "internal"),
    (ProtocolViolation(), 1002, None, "internal"),
    (UnsupportedData(), 1003, None, "internal"),
    (HostileInput(), 1007, None, "internal"),
    (MessageTooBig(), 1009, None, "internal"),
    (Overloaded(), 1013, None, "internal"),
    (RateLimited(), 1008, None, "internal"),
    (RoomFailed(), 1011, None, "internal"),
    (CollabError(), 1011, None, "internal"),
]


def body(response: Response) -> object:
    return json.loads(bytes(response.body))


@pytest.mark.parametrize(("exc", "close", "status", "code"), TREE, ids=lambda v: repr(v)[:30])
def test_each_class_maps_to_its_close_code_status_and_body(
    exc: CollabError, close: int | None, status: int | None, code: str
) -> None:
    assert exc.close_code == close and exc.http_status == status and exc.code == code
    if close is not None:
        assert close_code_for(exc) == (close, exc.reason)
    else:  # an HTTP-only error reaching a socket is a server bug
        assert close_code_for(exc) == (1011, "internal error")
    response = error_response(exc)
    if status is not None:
        assert response.status_code == status
        assert body(response) == {"error": {"code": code, "message": exc.reason}}
    else:  # a socket-only error reaching HTTP is a server bug
        assert response.status_code == 500
        assert body(response) == {"error": {"code": "internal", "message": "internal error"}}


def test_every_class_of_the_module_is_in_the_table() -> None:
    classes = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, CollabError)
    }
    assert classes == {type(exc) for exc, *_ in TREE}


def test_a_rate_refusal_says_when_to_retry() -> None:
    response = error_response(TooManyRequests(Rate.api_tokens, 2.1))
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert error_response(TooManyRequests(Rate.rooms, 0.01)).headers["retry-after"] == "1"


def test_reasons_are_given_or_default_and_bounded() -> None:
    assert Forbidden("token not valid for this room").reason == "token not valid for this room"
    assert NotFound().reason == "not found" and str(NotFound()) == "not found"
    assert close_code_for(Forbidden("x" * 500))[1] == "x" * 120
    assert body(error_response(BadRequest("y" * 500))) == {
        "error": {"code": "bad_request", "message": "y" * 200}
    }


def test_unknown_exceptions_are_server_bugs(caplog: pytest.LogCaptureFixture) -> None:
    assert close_code_for(ValueError("boom")) == (1011, "internal error")
    with caplog.at_level(logging.ERROR, logger="collab.errors"):
        response = error_response(ValueError("secret detail"))
    assert response.status_code == 500
    assert body(response) == {"error": {"code": "internal", "message": "internal error"}}
    assert any(record.exc_info for record in caplog.records)


def test_login_refusals_carry_their_own_code_and_status() -> None:
    exc = LoginRefused("provider_unavailable", "the identity provider cannot be reached", 502)
    response = error_response(exc)
    assert response.status_code == 502
    assert body(response) == {
        "error": {
            "code": "provider_unavailable",
            "message": "the identity provider cannot be reached",
        }
    }


def test_quotas_are_carried_by_the_errors_raised_at_a_cap() -> None:
    assert DocTooLarge().quota is Quota.doc_size
    assert LimitReached(Quota.docs_per_room, "document limit").quota is Quota.docs_per_room
    assert LimitReached(Quota.rooms_per_user).reason == "limit reached"
    assert Forbidden().quota is None and NotFound().quota is None
    assert MessageTooLong().quota is Quota.message_length
    assert FileTooLarge().quota is Quota.upload_size
    assert [q.value for q in Quota] == [
        "doc_size",
        "docs_per_room",
        "rooms_per_user",
        "message_length",
        "upload_size",
        "room_files",
        "reactions_per_message",
    ]


def test_failed_credentials_say_when_to_retry_and_expiry_is_retried() -> None:
    limited = TooManyRequests(None, 0.0)  # an address over its failed-credential budget
    assert error_response(limited).headers["retry-after"] == "1"
    # y-websocket >= 3.1 stops retrying on 4400-4499: an expired token's close must not.
    code = TokenExpired().close_code
    assert code is not None and not 4400 <= code < 4500


def test_json_error_is_the_one_body() -> None:
    response = json_error(401, "unauthorized", "a bearer token is required", {"X-A": "b"})
    assert response.status_code == 401 and response.headers["x-a"] == "b"
    assert body(response) == {
        "error": {"code": "unauthorized", "message": "a bearer token is required"}
    }
