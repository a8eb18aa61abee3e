"""The shipped files for several nodes, checked without running a node: ``systemd-analyze
verify`` finds nothing to say about either unit (the ExecStart binary pointed at this
environment's Python), the node template's start guard refuses a node without the shared
store, fan-out and secret key, and the operator's guide names real metrics, every one about
several nodes among them (issue 15, `deploy/`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collab.fanout.local import LocalBus, LocalFanout
from collab.metrics import Metrics
from collab.metrics.health import StoreHealth
from collab.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "operations-scale-out.md"
NODE_UNIT = DEPLOY / "collab-node@.service"
INSTALLED = "/opt/collab/venv/bin/collab serve"


@pytest.mark.parametrize("unit", ["collab.service", "collab-node@.service"])
def test_systemd_analyze_verify_passes_the_shipped_unit(unit: str, tmp_path: Path) -> None:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is required under CI=true (scripts/test installs systemd)")
        pytest.skip("systemd-analyze is not installed here: the unit files are not verified")
    text = (DEPLOY / unit).read_text("utf-8")
    assert INSTALLED in text
    # The only rewrite: verify checks that ExecStart's binary exists and is executable.
    (tmp_path / unit).write_text(text.replace(INSTALLED, f"{sys.executable} -m collab serve"))
    result = subprocess.run(
        [binary, "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    # Warnings (an unknown key, a bad value) do not change the exit code: none may name it.
    stem = unit.split("@")[0].removesuffix(".service")
    assert [line for line in said.splitlines() if stem in line] == [], said


def start_guard() -> str:
    """The node unit's ExecStartPre shell script, as systemd hands it to /bin/sh."""
    lines = NODE_UNIT.read_text("utf-8").splitlines()
    (line,) = [x for x in lines if x.startswith("ExecStartPre=/bin/sh -c '")]
    script = line.removeprefix("ExecStartPre=/bin/sh -c '").removesuffix("'")
    assert "'" not in script and "\\" not in script and "%" not in script  # nothing else to unquote
    return script.replace("$$", "$")  # systemd's only expansion here: $$ is a literal $


GOOD = {
    "COLLAB_STORE": "postgresql://collab@db.internal:5432/collab",
    "COLLAB_FANOUT": "redis://redis.internal:6379/0",
    "COLLAB_SECRET_KEY": "k" * 43,
}


def guard(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", start_guard()],
        env={"PATH": os.defpath, **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COLLAB_STORE", None),
        ("COLLAB_STORE", "sqlite:///collab.db"),
        ("COLLAB_FANOUT", None),
        ("COLLAB_FANOUT", "none"),
        ("COLLAB_SECRET_KEY", None),
        ("COLLAB_SECRET_KEY", "short"),
    ],
)
def test_the_node_unit_refuses_a_node_without_the_shared_settings(
    name: str, value: str | None
) -> None:
    assert guard(GOOD).returncode == 0
    env = {k: v for k, v in GOOD.items() if k != name}
    if value is not None:
        env[name] = value
    result = guard(env)
    assert result.returncode == 1
    assert name in result.stderr


def test_the_guide_names_real_metrics_and_every_one_about_several_nodes() -> None:
    metrics = Metrics()
    metrics.watch_fanout(LocalFanout(LocalBus(), "n1"))  # as a node with --fanout reports
    metrics.watch_store(StoreHealth(MemoryStore(), 60))  # as a node on PostgreSQL reports
    families = text_string_to_metric_families(metrics.exposition().decode())
    real = {f.name for f in families if "_created" not in f.name}  # counters: without _total
    guide = GUIDE.read_text("utf-8")
    named = {re.sub(r"_total$", "", n) for n in re.findall(r"`(collab_[a-z_]+)", guide)}
    assert len(named) >= 12
    assert sorted(named - real) == []  # nothing the guide tells you to watch is made up
    several = {n for n in real if n.startswith(("collab_fanout", "collab_head"))}
    assert len(several) >= 10
    assert sorted(several - named) == []
