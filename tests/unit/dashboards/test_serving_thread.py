"""The demo's dashboard: served on a uvicorn thread in the calling process, then stopped."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from attnwatch.cli.dashboard import serving
from pipeline.config import DashboardSettings, ModelSettings, StoreSettings
from pipeline.errors import ConfigError
from tests.support.network import free_port


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our URL
            return bool(response.status == 200)
    except OSError:
        return False


def test_the_dashboard_runs_on_a_thread_of_this_process_and_stops(store_url, model_dir):
    port = free_port()
    before = {t.name for t in threading.enumerate()}
    board = DashboardSettings(port=port)
    with serving(board, StoreSettings(url=store_url), ModelSettings(dir=model_dir)) as url:
        assert url == f"http://127.0.0.1:{port}/"
        assert "dashboard" in {t.name for t in threading.enumerate()} - before
        assert answers(url + "healthz")
        assert "<html" in urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310
    assert "dashboard" not in {t.name for t in threading.enumerate()}
    assert not answers(f"http://127.0.0.1:{port}/healthz")


def test_a_port_in_use_yields_no_url_and_the_caller_goes_on(store_url, model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        board = DashboardSettings(port=port)
        with serving(board, StoreSettings(url=store_url), ModelSettings(dir=model_dir)) as url:
            assert url is None


def test_a_public_bind_without_a_token_is_refused_before_serving(store_url, model_dir):
    board = DashboardSettings(host="0.0.0.0", port=free_port())  # noqa: S104 - the check
    with (
        pytest.raises(ConfigError, match="loopback"),
        serving(board, StoreSettings(url=store_url), ModelSettings(dir=model_dir)),
    ):
        pass


def test_the_root_cli_gives_the_demo_the_threaded_dashboard():
    from attnwatch.cli import app
    from attnwatch.cli.app import state

    assert state.dashboard is serving
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    assert {"dashboard", "report", "demo", "run", "config"} <= names
