"""``collab_store_healthy`` and the pool's gauges over a real PostgresStore (the shared server, a
fresh database): what a probe finds, how a scrape shows it, and that every name is documented
and charted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collab.metrics import Metrics
from collab.metrics.health import StoreHealth
from collab.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio


def values(metrics: Metrics) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("collab_store_") and family.name != "collab_store_commit_seconds"
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_the_probe_says_whether_the_store_answers(pg_url: str) -> None:
    metrics = Metrics()
    assert "collab_store_healthy" not in values(metrics)  # SQLite, memory: not watched
    store = PostgresStore(pg_url, max_connections=3)
    await store.open()
    health = StoreHealth(store, interval=60)
    metrics.watch_store(health)
    await health.probe()
    found = values(metrics)
    assert found["collab_store_healthy"] == 1.0 and found["collab_store_probe_failures_total"] == 0
    assert found["collab_store_pool_connections"] >= 1
    assert found["collab_store_pool_idle"] >= 1 and found["collab_store_pool_waiting"] == 0
    await store.close()
    await health.probe()  # a closed pool answers nothing
    found = values(metrics)
    assert found["collab_store_healthy"] == 0.0 and found["collab_store_probe_failures_total"] == 1
    assert found["collab_store_pool_connections"] == 0  # a closed pool holds none
    await store.open()
    try:
        await health.probe()
        assert values(metrics)["collab_store_healthy"] == 1.0
    finally:
        await store.close()


def documents() -> tuple[str, str]:
    """(the Grafana dashboard, README)."""
    root = Path(__file__).resolve().parents[2]
    dashboard = (root / "deploy" / "grafana-dashboard.json").read_text("utf-8")
    return dashboard, (root / "README.md").read_text("utf-8")


async def test_every_store_metric_is_documented_and_charted(pg_url: str) -> None:
    dashboard, readme = documents()
    store = PostgresStore(pg_url, max_connections=2)
    await store.open()
    try:
        metrics = Metrics()
        metrics.watch_store(StoreHealth(store, interval=60))
        names = {name.removesuffix("_total") for name in values(metrics)}
    finally:
        await store.close()
    assert len(names) == 5
    assert [n for n in names if n not in dashboard] == []
    assert [n for n in names if f"`{n}" not in readme] == []
