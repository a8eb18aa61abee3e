"""``collab serve`` with TLS material it cannot use (not PEM, a certificate without its key, a
key of another certificate) stops with one ``Error:`` line naming the setting, exit 1, before
migrating or listening; it printed uvicorn's traceback ending in ``ssl.SSLError: [SSL] PEM lib``
once the app had started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import collab
from tests.support.server import free_port
from tests.support.tls import self_signed


def _serve(tmp_path: Path, *tls: str) -> tuple[int, str]:
    result = collab(
        "serve",
        "--store",
        f"sqlite:///{tmp_path / 'c.db'}",
        "--port",
        str(free_port()),
        *tls,
        cwd=tmp_path,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("case", ["not-pem", "no-key", "other-key"])
def test_unusable_tls_material_is_one_error_line(tmp_path: Path, case: str) -> None:
    cert, _ = self_signed(tmp_path, "one")
    _, other_key = self_signed(tmp_path, "two")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    args = {
        "not-pem": ["--ssl-certfile", str(garbage)],
        "no-key": ["--ssl-certfile", str(cert)],
        "other-key": ["--ssl-certfile", str(cert), "--ssl-keyfile", str(other_key)],
    }[case]
    code, output = _serve(tmp_path, *args)
    assert code == 1, output
    assert "Traceback" not in output, output
    assert output.startswith("Error: ssl_certfile"), output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "c.db").exists()  # refused before anything was done
