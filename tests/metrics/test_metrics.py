"""/metrics against a real server: the numbers move with traffic, names stay out of labels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab.fanout.local import LocalBus, LocalFanout
from collab.metrics import Metrics, message_type
from collab.wire import framing
from tests.support.rawpeer import RawPeer
from tests.support.server import CollabServer, ServerFactory, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM, DOC = "zebraroom7", "quokkadoc9"  # distinctive: grepped for in the output
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, token: str | None = None) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(url, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return response.text, parse(response.text)


async def ascrape(url: str) -> tuple[str, Samples]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return response.text, parse(response.text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def wait_metric(
    server: CollabServer, check: Callable[[Samples], bool], timeout: float = 10
) -> Samples:
    """The first scrape whose samples pass ``check``."""
    samples: Samples = {}

    async def passes() -> bool:
        nonlocal samples
        _, samples = await ascrape(server.http_url + "/metrics")
        return check(samples)

    await wait_until(passes, timeout, interval=0.05)
    return samples


async def test_metrics_move_with_traffic_and_carry_no_names(server: CollabServer) -> None:
    _, before = await ascrape(server.http_url + "/metrics")
    viewer_token = server.mint_token("okapi-viewer", ROOM, "viewer")
    with anyio.fail_after(30):
        writer = await RawPeer.connect(server.ws_url(ROOM, DOC))
        reader = await RawPeer.connect(server.ws_url(ROOM, DOC))
        during = await wait_metric(server, lambda s: value(s, "collab_connections") == 2)
        assert value(during, "collab_peers") == 2
        assert value(during, "collab_docs_loaded") >= 1
        assert value(during, "collab_rooms_loaded") >= 1
        await writer.insert(0, "narwhal text that must stay private")
        await writer.request_saved(1)
        await writer.wait_for(lambda: writer.saved == 1)
        await reader.wait_for(lambda: "narwhal" in str(reader.text))

        viewer = await RawPeer.connect(server.ws_url(ROOM, DOC, token=viewer_token))
        await viewer.insert(0, "refused")
        await viewer.wait_for(lambda: bool(viewer.other_frames))  # permission denied
        for peer in (writer, reader, viewer):
            await peer.close()
        after = await wait_metric(server, lambda s: value(s, "collab_connections") == 0)
    grew = [
        ("collab_messages_received_total", {"type": "sync_update"}),
        ("collab_received_bytes_total", {"type": "sync_update"}),
        ("collab_messages_received_total", {"type": "saved"}),
        ("collab_messages_sent_total", {"type": "sync_update"}),
        ("collab_sent_bytes_total", {"type": "sync_update"}),
        ("collab_messages_sent_total", {"type": "sync_step1"}),
        ("collab_messages_sent_total", {"type": "auth"}),
        ("collab_update_apply_seconds_count", {}),
        ("collab_store_commit_seconds_count", {}),
        ("collab_messages_refused_total", {"reason": "readonly"}),
        ("collab_connection_closes_total", {"code": "1000"}),
    ]
    for name, labels in grew:
        assert value(after, name, **labels) > value(before, name, **labels), (name, labels)

    text, samples = await ascrape(server.http_url + "/metrics")
    names = {name for name, _ in samples}
    names |= {line.split()[2] for line in text.splitlines() if line.startswith("# ")}
    assert names and all(name.startswith("collab_") for name in names), sorted(names)
    user_ids = server.with_meta(lambda meta: meta.list_users())
    secrets = [ROOM, DOC, "okapi", "narwhal", "Dev user", server.dev_token, viewer_token]
    secrets += [user.id for user in user_ids]
    assert [s for s in secrets if s in text] == []


async def test_refusals_and_quotas_are_counted(server_factory: ServerFactory) -> None:
    server = server_factory(max_docs_per_room=1, max_doc_size=64 * 1024)
    _, before = await ascrape(server.http_url + "/metrics")
    with anyio.fail_after(30):
        first = await RawPeer.connect(server.ws_url("capped", "one"))
        await first.insert(0, "x")
        await first.request_saved(1)
        await first.wait_for(lambda: first.saved == 1)
        second = await RawPeer.connect(server.ws_url("capped", "two"), sync=False)
        await second.closed.wait()
        assert second.close_code == 4403
        await first.insert(0, "b" * 70_000)
        await first.closed.wait()
        assert first.close_code == 4413
        hostile = await RawPeer.connect(server.ws_url("capped", "one"))
        await hostile.websocket.send(b"\x00\x02\x05\x01")  # a length past the frame's end
        await hostile.closed.wait()
        assert hostile.close_code == 1002
        # A wrong dev token on /login is a login failure.
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(server.http_url + "/login?token=wrong-token")
    after = await wait_metric(
        server, lambda s: value(s, "collab_login_failures_total", via="dev") > 0
    )
    for name, labels in [
        ("collab_quota_refusals_total", {"quota": "docs_per_room"}),
        ("collab_quota_refusals_total", {"quota": "doc_size"}),
        ("collab_messages_refused_total", {"reason": "doc_too_large"}),
        ("collab_messages_refused_total", {"reason": "protocol"}),
        ("collab_connection_closes_total", {"code": "4403"}),
        ("collab_connection_closes_total", {"code": "4413"}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) + 1, (name, labels)


async def test_slow_consumer_close_is_counted(server_factory: ServerFactory) -> None:
    server = server_factory(outbound_queue_bytes=256 * 1024)
    url = server.ws_url("slowroom", "d")
    with anyio.fail_after(60):
        slow = await connect(url, max_size=None, max_queue=1)  # never reads
        await slow.send(framing.sync_step1(b"\x00"))
        writer = await RawPeer.connect(url)
        # Loopback buffers absorb tens of MB (tcp_rmem autotuning) before the queue fills.
        chunk = "y" * 1_000_000
        while True:  # counted when the server decides (its close frame may never go out)
            await writer.insert(0, chunk)
            await writer.delete(0, len(chunk))
            _, samples = await ascrape(server.http_url + "/metrics")
            if value(samples, "collab_slow_consumer_closes_total") >= 1:
                break
        assert value(samples, "collab_slow_consumer_closes_total") == 1
        await writer.close()
        try:
            while True:
                await slow.recv()
        except ConnectionClosed:
            pass


def test_metrics_token_is_required_when_set(server_factory: ServerFactory) -> None:
    token = "metrics-token-7f3a9c"
    server = server_factory(metrics_token=token)
    server.remember(token)  # the fixture fails the test if it reaches the log
    url = server.http_url + "/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        response = httpx.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    text, _ = scrape(url, token)
    assert "collab_connections" in text


def test_metrics_port_moves_metrics_off_the_main_port(
    server_factory: ServerFactory,
) -> None:
    port = free_port()
    server = server_factory(metrics_port=port)
    assert httpx.get(server.http_url + "/metrics", timeout=5).status_code == 404
    text, _ = scrape(f"http://127.0.0.1:{port}/metrics")
    assert "collab_connections" in text
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404


def test_every_metric_is_named_collab_and_apps_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()  # would raise "Duplicated timeseries" if shared
    first.connections.inc()
    assert b"collab_connections 1.0" in first.exposition()
    assert b"collab_connections 0.0" in second.exposition()
    for family in text_string_to_metric_families(first.exposition().decode()):
        assert family.name.startswith("collab_"), family.name
    assert message_type(framing.sync_update(b"\x00\x00")) == "sync_update"
    assert message_type(framing.saved(3)) == "saved"
    assert message_type(b"\x07") == "other"


def test_dashboard_and_readme_cover_every_metric() -> None:
    root = Path(__file__).resolve().parents[2]
    dashboard = (root / "deploy" / "grafana-dashboard.json").read_text("utf-8")
    model = json.loads(dashboard)
    assert {v["name"] for v in model["templating"]["list"]} >= {"datasource", "instance"}
    readme = (root / "README.md").read_text("utf-8")
    families = text_string_to_metric_families(Metrics().exposition().decode())
    skip = ("collab_process_",)  # process metrics, and counters' _created twins
    names = [f.name for f in families if not f.name.startswith(skip) and "_created" not in f.name]
    assert len(names) > 15
    assert [n for n in names if n not in dashboard] == []
    assert [n for n in names if f"`{n}" not in readme] == []


def test_a_watched_fanout_is_reported_and_documented() -> None:
    root = Path(__file__).resolve().parents[2]
    dashboard = (root / "deploy" / "grafana-dashboard.json").read_text("utf-8")
    readme = (root / "README.md").read_text("utf-8")
    metrics = Metrics()
    assert "collab_fanout_healthy" not in metrics.exposition().decode()  # one node: nothing
    bus = LocalBus()
    fanout = LocalFanout(bus, "n1")
    fanout.stats.received = 3
    metrics.watch_fanout(fanout)
    text = metrics.exposition().decode()
    assert "collab_fanout_healthy 1.0" in text and "collab_fanout_received_total 3.0" in text
    bus.set_up(False)
    assert "collab_fanout_healthy 0.0" in metrics.exposition().decode()
    names = [
        f.name
        for f in text_string_to_metric_families(text)
        if f.name.startswith(("collab_fanout", "collab_head")) and "_created" not in f.name
    ]
    assert len(names) >= 10
    assert [n for n in names if n not in dashboard] == []
    assert [n for n in names if f"`{n}" not in readme] == []
