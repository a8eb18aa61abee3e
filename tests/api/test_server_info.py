"""``GET /api/v1/server``: the version and the limits a client sizes itself by, for any
credential and nobody else."""

from __future__ import annotations

from tests.api.conftest import Api, assert_error
from tests.support.server import ServerFactory


def test_any_credential_reads_the_limits(server_factory: ServerFactory) -> None:
    server = server_factory(max_doc_size=1234567, ws_max_size=7654321, max_upload_size=4242)
    api = Api(server)
    alice = api.user("alice")
    api.room("r", owner=alice)
    room_token = server.remember(alice.http.post("/rooms/r/tokens", json={}).json()["token"])
    for client in (api.dev.http, alice.http, api.bearer(room_token)):
        found = client.get("/server").json()
        assert found["limits"]["max_doc_size"] == 1234567
        assert found["limits"]["ws_max_size"] == 7654321
        assert found["limits"]["max_upload_size"] == 4242
        assert isinstance(found["version"], str)
    assert_error(api.anonymous().get("/server"), 401)
    assert_error(api.bearer("forged").get("/server"), 401)
    token_id = alice.http.get("/tokens").json()["items"][0]["id"]
    alice.http.delete(f"/tokens/{token_id}")
    assert_error(alice.http.get("/server"), 401)
    assert_error(api.dev.http.post("/server"), 405)
    api.close()
