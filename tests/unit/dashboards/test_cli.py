"""Serving: ``attnwatch dashboard`` checks the bind, then runs uvicorn."""

from __future__ import annotations

import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import attnwatch.cli.dashboard as cli

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the bind being checked; uvicorn is a stub)


def app() -> typer.Typer:
    runner_app = typer.Typer()
    runner_app.command()(cli.dashboard)
    return runner_app


def test_a_non_loopback_bind_without_a_token_exits_before_serving(monkeypatch, store_url):
    monkeypatch.delenv("ATTNWATCH_DASHBOARD_TOKEN", raising=False)
    served = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda *a, **k: served.append(k))
    result = CliRunner().invoke(app(), ["--host", ALL_INTERFACES, "--store-url", store_url])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output
    assert served == []


def test_serves_the_guarded_app_on_the_settings_address(monkeypatch, store_url, model_dir):
    monkeypatch.setenv("ATTNWATCH_DASHBOARD_TOKEN", "s3cret-token-0123456789abcdef")
    served = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **k: served.append((app, k)))
    result = CliRunner().invoke(
        app(),
        [
            "--host",
            ALL_INTERFACES,
            "--port",
            "8123",
            "--store-url",
            store_url,
            "--model-dir",
            str(model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    ((served_app, options),) = served
    assert options["host"] == ALL_INTERFACES and options["port"] == 8123
    assert options["access_log"] is False
    with TestClient(served_app) as client:
        assert client.get("/").status_code == 401
        assert client.get("/healthz").status_code == 200


def test_a_bad_store_url_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cli.uvicorn, "run", lambda *a, **k: None)
    result = CliRunner().invoke(app(), ["--store-url", "mysql://db/x"])
    assert result.exit_code == 2 and "unsupported store URL" in result.output
