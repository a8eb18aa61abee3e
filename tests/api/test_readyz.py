"""``/readyz`` answers anyone (balancers probe it), so a failure says only "unavailable": the
detail goes to the log (issue 8, item 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collab.app import create_app
from collab.db import StoreError
from collab.services import Services
from collab.settings import Settings


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
