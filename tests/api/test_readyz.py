"""``/readyz`` answers anyone (balancers probe it), so a failure says only "unavailable": the
detail goes to the log (issue 8, item 13); and a success says only "ready"."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from collab.app import create_app
from collab.db import StoreError
from collab.services import Services
from collab.settings import Settings
from tests.support.rawpeer import RawPeer
from tests.support.server import ServerFactory


def test_readyz_keeps_the_failure_to_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    detail = f"{tmp_path}/collab.db: disk I/O error"
    app = create_app(Settings(store=f"sqlite:///{tmp_path / 'collab.db'}", dev_token="x" * 32))
    shared: Services = app.state.services

    async def broken() -> None:
        raise StoreError(detail)

    with TestClient(app) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        monkeypatch.setattr(shared.store, "ping", broken)
        with caplog.at_level("WARNING", logger="collab.app"):
            r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable"}
    assert "disk I/O" not in r.text and str(tmp_path) not in r.text
    assert detail in caplog.text


@pytest.mark.anyio
async def test_readyz_tells_no_activity_that_metrics_token_protects(
    server_factory: ServerFactory,
) -> None:
    """With ``metrics_token`` set, how many docs are loaded is the operator's (the gauge
    ``collab_docs_loaded``): /readyz, which anyone may ask, says only whether it is ready."""
    server = server_factory(metrics_token="m" * 32)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=5) as http:
        assert (await http.get("/metrics")).status_code == 401
        with anyio.fail_after(20):
            peer = await RawPeer.connect(server.ws_url("busyroom", "doc"))
            ready = await http.get("/readyz")
            await peer.close()
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
