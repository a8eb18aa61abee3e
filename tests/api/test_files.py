"""/api/v1/rooms/{room}/files against a real server (issue 12): upload, list, download with
ranges and conditions, previews, delete, and every refusal (roles, non-members, removed
members, other rooms, revoked credentials, hostile files and names, quotas, floods, malformed
bodies)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from collab.store.bloblock import lock_file
from tests.api.conftest import Api, assert_error
from tests.support.server import CollabServer, ServerFactory

HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


def upload(
    client: httpx.Client, room: str, data: bytes, name: str = "f.bin", ctype: str = "text/plain"
) -> httpx.Response:
    return client.post(f"/rooms/{room}/files", files={"file": (name, data, ctype)})


def uploaded(client: httpx.Client, room: str, data: bytes, name: str = "f.bin") -> dict[str, Any]:
    r = upload(client, room, data, name)
    assert r.status_code == 201, r.text
    found: dict[str, Any] = r.json()
    return found


def image(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def png_bomb(side: int = 100_000) -> bytes:
    """A PNG declaring side x side pixels whose data is a few KiB of compressed zeros."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (4 * 1024 * 1024), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def blobs_on_disk(server: CollabServer) -> list[Path]:
    root = server.workdir / "files"
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.parent.name != "tmp" and p != lock_file(root)
    ]


def temps_on_disk(server: CollabServer) -> list[Path]:
    return list((server.workdir / "files" / "tmp").iterdir())


def test_upload_then_download_the_same_bytes(api: Api, server: CollabServer) -> None:
    room = api.room("r")
    data = os.urandom(300_000)
    r = upload(api.dev.http, room, data, "report.pdf", "application/pdf")
    assert r.status_code == 201, r.text
    found = r.json()
    assert found["size"] == len(data) and found["sha256"] == hashlib.sha256(data).hexdigest()
    assert found["name"] == "report.pdf" and found["room"] == room
    assert found["mime"] == "application/octet-stream"  # the bytes, not the client's header
    assert found["uploader"] == api.dev.user_id
    got = api.dev.http.get(f"/rooms/{room}/files/{found['id']}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["etag"] == f'"{found["sha256"]}"'
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["accept-ranges"] == "bytes"
    listed = api.dev.http.get(f"/rooms/{room}/files").json()
    assert listed["items"] == [found] and listed["next_cursor"] is None
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    assert any(e["action"] == "file.upload" and e["target"] == found["id"] for e in audit)
    # HEAD answers the headers alone.
    head = api.dev.http.head(f"/rooms/{room}/files/{found['id']}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))


def test_the_same_bytes_are_stored_once_for_every_room(api: Api, server: CollabServer) -> None:
    data = os.urandom(50_000)
    a = uploaded(api.dev.http, api.room("a"), data, "one.bin")
    b = uploaded(api.dev.http, api.room("b"), data, "two.bin")
    again = uploaded(api.dev.http, "a", data, "three.bin")
    assert a["sha256"] == b["sha256"] == again["sha256"]
    assert len({a["id"], b["id"], again["id"]}) == 3  # a reference per upload
    assert len(blobs_on_disk(server)) == 1 and temps_on_disk(server) == []
    assert api.dev.http.get(f"/rooms/b/files/{b['id']}").content == data
    assert_error(api.dev.http.get(f"/rooms/b/files/{a['id']}"), 404, "not_found")


def test_who_may_upload_and_download(api: Api) -> None:
    """Done means 2: a viewer cannot upload; a non-member, a removed member, a member of
    another room and a revoked credential cannot download, with the same answer whether or
    not the file exists."""
    viewer, commenter, member = api.user("viewer"), api.user("commenter"), api.user("member")
    outsider, other = api.user("outsider"), api.user("other")
    members = {viewer.user_id: "viewer", commenter.user_id: "commenter", member.user_id: "editor"}
    room = api.room("r", owner=api.dev, **members)
    api.room("elsewhere", owner=api.dev, **{other.user_id: "editor"})
    assert_error(upload(viewer.http, room, b"no"), 403, "forbidden")
    found = uploaded(commenter.http, room, b"a commenter's file")
    path, missing = f"/rooms/{room}/files/{found['id']}", f"/rooms/{room}/files/{'0' * 32}"
    assert viewer.http.get(path).content == b"a commenter's file"  # viewers read
    assert member.http.get(path).status_code == 200
    assert api.dev.http.delete(f"/rooms/{room}/members/{member.user_id}").status_code == 204
    for who in (outsider, member):  # a non-member; a member just removed
        there, nothing = who.http.get(path), who.http.get(missing)
        assert there.status_code == nothing.status_code == 404 and there.json() == nothing.json()
        for suffix in ("/preview", ""):
            assert who.http.get(path + suffix).status_code == 404
        assert_error(who.http.get(f"/rooms/{room}/files"), 404)
        assert_error(upload(who.http, room, b"x"), 404)
    # A member of another room, through that room: no such file there, existing or not.
    through = other.http.get(f"/rooms/elsewhere/files/{found['id']}")
    nothing = other.http.get(f"/rooms/elsewhere/files/{'0' * 32}")
    assert through.status_code == nothing.status_code == 404 and through.json() == nothing.json()
    assert other.http.get(path).json() == outsider.http.get(path).json()
    assert_error(api.anonymous().get(path), 401)
    assert_error(api.bearer("not-a-token").get(path), 401)
    tokens = viewer.http.get("/tokens").json()["items"]
    assert viewer.http.delete(f"/tokens/{tokens[0]['id']}").status_code == 204
    assert_error(viewer.http.get(path), 401)
    # A room token for another room opens nothing here.
    elsewhere_token = api.server.mint_token("carol", "elsewhere", "editor")
    assert_error(api.bearer(elsewhere_token).get(path), 403)
    # Expired credentials: a session, a room token of this very room.
    expired_session = api.cookie_client(viewer.user_id, None)
    expired_session.cookies.set("collab_session", api.server.session(viewer.user_id, ttl=-1))
    assert_error(expired_session.get(path), 401)
    assert_error(api.bearer(api.server.mint_token("dave", room, "editor", ttl=-5)).get(path), 401)
    assert api.bearer(api.server.mint_token("erin", room, "editor")).get(path).status_code == 200


def test_hostile_files_are_attachments_never_pages(api: Api) -> None:
    """Done means 3: HTML and SVG (with script) are attachments with nosniff and a sandboxing
    CSP, whatever the name and type the client claimed; raster images alone are inline."""
    room = api.room("r")
    cases = [
        (HTML, "page.png", "image/png", "text/html", "attachment"),
        (SVG, "logo.svg", "image/svg+xml", "image/svg+xml", "attachment"),
        (image("PNG"), "cat.html", "text/html", "image/png", "inline"),
        (b"plain words\n", "notes.txt", "text/html", "text/plain", "attachment"),
    ]
    for data, name, claimed, mime, disposition in cases:
        r = upload(api.dev.http, room, data, name, claimed)
        assert r.status_code == 201, r.text
        found = r.json()
        assert found["mime"] == mime, (name, found)
        got = api.dev.http.get(f"/rooms/{room}/files/{found['id']}")
        assert got.content == data
        assert got.headers["content-type"].split(";")[0] == mime
        assert got.headers["content-disposition"].startswith(disposition + ";")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in got.headers["content-security-policy"]
        assert got.headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\secret.docx", "secret.docx"),
        ("evil\x00.exe.png", "evil.exe.png"),
        ("tab\there\x1b[31m\x7f.txt", "tab here[31m.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("x" * 300 + ".tar.gz", "x" * 197 + ".gz"),
        ("é" * 300, "é" * 127),
        ("..", "file"),
        ("", "file"),
    ],
)
def test_names_are_sanitised(api: Api, name: str, stored: str) -> None:
    """Done means 3. The body is built by hand: httpx (like browsers) would percent-encode a
    NUL or a newline in the name, and the server must cope with what any client sends."""
    room = api.room("r")
    head = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n\r\n'
    body = head % name.encode() + b"x\r\n--XyZ--\r\n"
    multipart = {"content-type": "multipart/form-data; boundary=XyZ"}
    raw = api.dev.http.post(f"/rooms/{room}/files", content=body, headers=multipart)
    assert raw.status_code == 201, raw.text
    found = raw.json()
    assert found["name"] == stored
    disposition = api.dev.http.get(f"/rooms/{room}/files/{found['id']}").headers[
        "content-disposition"
    ]
    assert "\n" not in disposition and "/" not in disposition.split("filename=")[1]


def test_range_requests_resume_and_conditions(api: Api) -> None:
    """Done means 4: a download resumed from the middle returns 206 with the right bytes."""
    room = api.room("r")
    data = os.urandom(1_000_000)
    found = uploaded(api.dev.http, room, data)
    path = f"/rooms/{room}/files/{found['id']}"
    half = api.dev.http.get(path, headers={"range": f"bytes={len(data) // 2}-"})
    assert half.status_code == 206 and half.content == data[len(data) // 2 :]
    assert half.headers["content-range"] == f"bytes 500000-999999/{len(data)}"
    part = api.dev.http.get(path, headers={"range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    tail = api.dev.http.get(path, headers={"range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    etag = half.headers["etag"]
    same = api.dev.http.get(path, headers={"range": "bytes=5-9", "if-range": etag})
    assert same.status_code == 206 and same.content == data[5:10]
    changed = api.dev.http.get(path, headers={"range": "bytes=5-9", "if-range": '"other"'})
    assert changed.status_code == 200 and changed.content == data  # not the file it resumes
    beyond = api.dev.http.get(path, headers={"range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    cached = api.dev.http.get(path, headers={"if-none-match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag


def test_previews_are_bounded_and_hostile_images_get_none(api: Api) -> None:
    """Done means 3: a PNG decompression bomb and a truncated JPEG get no preview, and the
    server keeps serving."""
    room = api.room("r")
    photo = uploaded(api.dev.http, room, image("JPEG", (2000, 1000)), "photo.jpg")
    preview = api.dev.http.get(f"/rooms/{room}/files/{photo['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(preview.content)).size == (320, 160)
    assert preview.headers["x-content-type-options"] == "nosniff"
    etag = preview.headers["etag"]
    assert (
        api.dev.http.get(
            f"/rooms/{room}/files/{photo['id']}/preview", headers={"if-none-match": etag}
        ).status_code
        == 304
    )
    clear = uploaded(api.dev.http, room, image("PNG", (100, 400), "RGBA"), "clear.png")
    thumb = api.dev.http.get(f"/rooms/{room}/files/{clear['id']}/preview")
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (80, 320)
    whole = image("JPEG", (800, 800))
    hostile = [
        ("bomb.png", png_bomb()),
        ("cut.jpg", whole[: len(whole) // 2]),
        ("garbage.gif", b"GIF89a" + os.urandom(2000)),
        ("page.html", HTML),
    ]
    for name, data in hostile:
        found = uploaded(api.dev.http, room, data, name)
        for _ in range(2):  # the second answer comes from the cache
            assert_error(api.dev.http.get(f"/rooms/{room}/files/{found['id']}/preview"), 404)
        assert api.dev.http.get(f"/rooms/{room}/files/{found['id']}").content == data
    assert api.dev.http.get("/me").status_code == 200


def test_delete_by_the_uploader_or_an_owner(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter", bob.user_id: "editor"})
    mine = uploaded(alice.http, room, b"alice's")
    assert_error(bob.http.delete(f"/rooms/{room}/files/{mine['id']}"), 403, "forbidden")
    assert alice.http.delete(f"/rooms/{room}/files/{mine['id']}").status_code == 204
    assert_error(alice.http.get(f"/rooms/{room}/files/{mine['id']}"), 404)
    assert_error(alice.http.delete(f"/rooms/{room}/files/{mine['id']}"), 404)
    theirs = uploaded(bob.http, room, b"bob's")
    assert api.dev.http.delete(f"/rooms/{room}/files/{theirs['id']}").status_code == 204
    audit = api.dev.http.get(f"/rooms/{room}/audit").json()["items"]
    moderated = [e for e in audit if e["action"] == "file.delete" and e["target"] == theirs["id"]]
    assert moderated and moderated[0]["detail"]["moderated"] is True


def test_malformed_bodies_are_400_and_leave_nothing(api: Api, server: CollabServer) -> None:
    room = api.room("r")
    dev = api.dev.http
    base = f"/rooms/{room}/files"
    assert_error(dev.post(base, json={"file": "x"}), 400, "bad_request")  # not multipart
    no_boundary = {"content-type": "multipart/form-data"}
    assert_error(dev.post(base, content=b"x", headers=no_boundary), 400, "bad_request")
    assert_error(dev.post(base, files={"other": ("a", b"x")}), 400, "bad_request")
    two = [("file", ("a", b"x")), ("file", ("b", b"y"))]
    assert_error(dev.post(base, files=two), 400, "bad_request")
    multipart = {"content-type": "multipart/form-data; boundary=XyZ"}
    cut = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n' + (
        b"partial" * 1000
    )
    assert_error(dev.post(base, content=cut, headers=multipart), 400, "bad_request")
    garbage = b"--XyZ\r\n" + b"no headers at all" * 10_000
    assert_error(dev.post(base, content=garbage, headers=multipart), 400, "bad_request")
    many = [("field", ("", b"v")) for _ in range(20)] + [("file", ("a", b"x"))]
    assert_error(dev.post(base, files=many), 400, "bad_request")
    assert blobs_on_disk(server) == [] and temps_on_disk(server) == []
    # Fields beside the file are ignored; an empty file is a file.
    r = dev.post(base, files={"file": ("empty.txt", b"")}, data={"note": "hello"})
    assert r.status_code == 201 and r.json()["size"] == 0
    assert dev.get(f"{base}/{r.json()['id']}").content == b""


def test_the_room_quota_and_the_upload_rate(server_factory: ServerFactory) -> None:
    server = server_factory(max_room_files_bytes=1000, api_create_rate=0.01, api_create_burst=6)
    api = Api(server)
    try:
        room = api.room("r")
        uploaded(api.dev.http, room, b"a" * 600)
        over = upload(api.dev.http, room, b"b" * 600)  # refused while it streams
        assert_error(over, 403, "limit_reached")
        assert "quota" in over.json()["error"]["message"]
        big = upload(api.dev.http, room, b"z" * 400_000)  # its length alone cannot fit
        assert_error(big, 403, "limit_reached")
        assert big.headers["connection"] == "close"
        uploaded(api.dev.http, room, b"c" * 400)  # exactly at the quota
        assert_error(upload(api.dev.http, room, b"d"), 403, "limit_reached")  # full: at once
        assert len(blobs_on_disk(server)) == 2 and temps_on_disk(server) == []
        codes = [upload(api.dev.http, "r2", b"e").status_code for _ in range(3)]
        assert codes[-1] == 429  # six uploads spent the burst: refused before any byte
        metrics = httpx.get(server.http_url + "/metrics").text
        assert 'collab_file_uploads_refused_total{reason="quota"} 3.0' in metrics
        assert "collab_file_uploads_total 2.0" in metrics
        assert "collab_file_stored_bytes 1000.0" in metrics
        assert 'collab_api_rate_limited_total{kind="files"}' in metrics
        assert 'collab_quota_refusals_total{quota="room_files"} 3.0' in metrics
    finally:
        api.close()


def test_openapi_documents_the_file_routes(server: CollabServer) -> None:
    spec = httpx.get(server.http_url + "/api/v1/openapi.json").json()
    files = spec["paths"]["/api/v1/rooms/{room}/files"]
    assert "multipart/form-data" in files["post"]["requestBody"]["content"]
    assert "429" in files["post"]["responses"]
    one = spec["paths"]["/api/v1/rooms/{room}/files/{file}"]
    assert set(one) == {"get", "delete"} and "206" in one["get"]["responses"]
    assert "/api/v1/rooms/{room}/files/{file}/preview" in spec["paths"]


def test_a_browser_uploads_with_its_session_only_from_our_origin(api: Api) -> None:
    """A multipart POST is what any site's form may send cross-site: a cookie upload needs our
    Origin; the download a page embeds (<img>) needs none."""
    alice = api.user("alice")
    room = api.room("r", owner=api.dev, **{alice.user_id: "commenter"})
    foreign = api.cookie_client(alice.user_id, "https://evil.example")
    assert_error(upload(foreign, room, b"x"), 403, "forbidden")
    assert_error(upload(api.cookie_client(alice.user_id, None), room, b"x"), 403, "forbidden")
    same = api.cookie_client(alice.user_id, api.server.http_url)
    found = uploaded(same, room, image("PNG"), "pic.png")
    shown = api.cookie_client(alice.user_id, None).get(f"/rooms/{room}/files/{found['id']}")
    assert shown.status_code == 200 and shown.headers["content-disposition"].startswith("inline")


def test_odd_ids_and_lost_bytes(api: Api, server: CollabServer) -> None:
    room = api.room("r")
    for odd in ("x" * 65, "a-b", "%2E%2E", "é"):
        assert_error(api.dev.http.get(f"/rooms/{room}/files/{odd}"), 404, "not_found")
    found = uploaded(api.dev.http, room, image("PNG"), "pic.png")
    for blob in blobs_on_disk(server):
        blob.unlink()  # the bytes vanish under the server (a disk fault, a hand at work)
    for suffix in ("", "/preview"):
        assert_error(api.dev.http.get(f"/rooms/{room}/files/{found['id']}{suffix}"), 500)
    assert "the bytes of file" in server.log()
    assert api.dev.http.get(f"/rooms/{room}/files").status_code == 200


def test_a_chunked_body_cannot_run_on_past_its_closing_boundary(
    api: Api, server: CollabServer
) -> None:
    """Chunked, the body's length is unknown: the file is capped while it streams, and what
    follows the closing boundary (an epilogue, ignored) is capped like the other fields, not
    read for as long as the client cares to send it."""
    room = api.room("r")
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'

    def body() -> Any:
        yield head + b"hello\r\n--B--\r\n"
        for _ in range(64):  # 4 MiB after the end, far past anything a body may carry
            yield b"e" * 65536

    r = api.dev.http.post(
        f"/rooms/{room}/files",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=B"},
    )
    assert_error(r, 400, "bad_request")
    assert r.headers["connection"] == "close"
    assert blobs_on_disk(server) == [] and temps_on_disk(server) == []
    assert api.dev.http.get(f"/rooms/{room}/files").json()["items"] == []
