"""``attnwatch dashboard``: the command is wired into the root CLI and takes the global options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnwatch.cli import app


@pytest.mark.slow
def test_attnwatch_lists_the_dashboard_beside_the_pipeline_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "attnwatch"], capture_output=True, text=True, timeout=120
    )
    assert "dashboard" in result.stdout + result.stderr


def test_a_public_bind_without_a_token_is_refused_before_anything_opens(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("ATTNWATCH_DASHBOARD_TOKEN", raising=False)
    url = f"sqlite:///{tmp_path / 'never.db'}"
    public = "0.0.0.0"  # noqa: S104 - the bind being refused
    result = CliRunner().invoke(app, ["--store-url", url, "dashboard", "--host", public])
    assert result.exit_code != 0
    assert "token" in result.output.lower()
    assert not (tmp_path / "never.db").exists()
