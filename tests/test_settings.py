from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from collab.cli import main
from collab.settings import SETTINGS_FIELDS, Settings, env_name

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme_table() -> None:
    text = README.read_text("utf-8")
    for f in SETTINGS_FIELDS:
        flag = "--" + f.name.replace("_", "-")
        row = re.search(rf"^\| `{re.escape(flag)}` \| `{env_name(f.name)}` \|.*$", text, re.M)
        assert row, f"README settings table lacks {flag} / {env_name(f.name)}"


def test_every_setting_is_a_serve_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for f in SETTINGS_FIELDS:
        assert "--" + f.name.replace("_", "-") in result.output
        assert env_name(f.name) in result.output


def test_environment_then_overrides() -> None:
    env = {"COLLAB_PORT": "9001", "COLLAB_WS_PER_MESSAGE_DEFLATE": "yes", "COLLAB_HOST": "::1"}
    s = Settings.from_env(env, host="127.0.0.2")
    assert s.port == 9001 and s.ws_per_message_deflate is True and s.host == "127.0.0.2"
    assert Settings.from_env({}).port == 8000


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="COLLAB_PORT"):
        Settings.from_env({"COLLAB_PORT": "eighty"})
