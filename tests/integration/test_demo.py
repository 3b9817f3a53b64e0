"""`attnwatch demo` as a user runs it: embedded broker, run loop, replay, metrics, summary."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from consumers.broker import free_port
from pipeline.store import open_store, read_dead_letters, read_events

pytestmark = pytest.mark.integration


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_demo_runs_the_whole_monitor_and_exports_metrics(tiny_model, tmp_path):
    port = free_port()
    store_url = f"sqlite:///{tmp_path / 'demo.db'}"
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "--model-dir",
        str(tiny_model),
        "--store-url",
        store_url,
        "--metrics-port",
        str(port),
        "--log-format",
        "console",
        "demo",
        "--duration",
        "60",
        "--count",
        "400",
        "--rate",
        "100",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    scraped = ""
    deadline = time.monotonic() + 90
    while process.poll() is None and time.monotonic() < deadline:
        text = scrape(port)
        if metric(text, "attnwatch_messages_total") > 100:
            scraped = text
        time.sleep(1)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-3000:]
    assert "done:" in stdout and "enriched" in stdout

    assert scraped, "never saw the run loop's metrics on /metrics"
    for name in (
        "attnwatch_batch_size_bucket",
        "attnwatch_model_latency_seconds_count",
        "attnwatch_end_to_end_latency_seconds_count",
        "attnwatch_labels_total",
        "attnwatch_model_info",
        "attnwatch_commits_total",
    ):
        assert metric(scraped, name) > 0, name

    events = read_events(store_url)
    with open_store(store_url) as store:
        assert store.count() == len(events)
    dead = len(read_dead_letters(store_url))
    # The stream drains: every replayed message is either enriched or dead-lettered.
    assert len(events) + dead == 400
    assert set(events["kind"]) == {"chat", "news"}
    assert {"customer", "agent"} <= set(events["role"].dropna())
