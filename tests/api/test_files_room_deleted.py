"""An upload that ends after its room was deleted (it was a member's when it began) is no
file of any room: it is refused like any request about a room that does not exist, and a room
created later with the same id does not find it among its files."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.api.conftest import Api, assert_error
from tests.api.test_files import temps_on_disk
from tests.support.server import CollabServer
from tests.support.waiting import poll_until


def test_an_upload_ending_after_its_room_was_deleted_lands_nowhere(
    api: Api, server: CollabServer
) -> None:
    room = api.room("r")
    other = api.user("other")
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="old.txt"\r\n\r\n'

    def body() -> Iterator[bytes]:
        yield head + b"uploaded into the old room"
        # The server has checked the membership and begun the upload; the room goes.
        assert poll_until(lambda: temps_on_disk(server) != [], 10), "the upload under way"
        deleted = other_client.delete(f"/rooms/{room}")
        assert deleted.status_code == 204, deleted.text
        yield b"\r\n--B--\r\n"

    other_client = httpx.Client(
        base_url=api.dev.http.base_url, headers=dict(api.dev.http.headers), timeout=10
    )
    try:
        r = api.dev.http.post(
            f"/rooms/{room}/files",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=B"},
        )
    finally:
        other_client.close()
    assert_error(r, 404)
    # Someone else makes a room of the same id: it has no files, the old one's least of all.
    api.room("r", owner=other)
    assert other.http.get(f"/rooms/{room}/files").json()["items"] == []
