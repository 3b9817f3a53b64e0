"""`attnwatch demo` as a user runs it: embedded broker, run loop, replay, metrics, summary."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import urllib.request

import pandas as pd
import pytest

from pipeline.store import open_store, read_dead_letters, read_events
from pipeline.store.alerts import AlertTable
from pipeline.store.engine import create_engine, normalise_url
from tests.support.network import free_port
from tests.support.waiting import wait_for

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except (OSError, http.client.HTTPException):  # not up yet, or shutting down mid-reply
        return ""


def page(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (OSError, http.client.HTTPException):  # not up yet, or shutting down mid-reply
        return ""


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def demo_command(model_dir, store_url: str | None, port: int, *options: str) -> list[str]:
    """The demo's command line; ``store_url`` ``None``: the demo's own store per run."""
    store = ["--store-url", store_url] if store_url is not None else []
    return [
        sys.executable,
        "-m",
        "attnwatch",
        "--model-dir",
        str(model_dir),
        *store,
        "--metrics-port",
        str(port),
        "--log-format",
        "console",
        "demo",
        *options,
    ]


def test_demo_runs_the_whole_monitor_and_exports_metrics(tiny_model, tmp_path):
    port = free_port()
    store_url = f"sqlite:///{tmp_path / 'demo.db'}"
    # `make demo`'s 4000 messages over its simulated day, replayed in 20 s: the alert
    # windows are hours of event time (30 min buckets, 4 h against the day before), the
    # shift six hours of angry card-declined chats on "app".
    command = demo_command(
        tiny_model, store_url, port, "--duration", "90", "--count", "4000", "--rate", "200"
    )
    board = free_port()
    env = {**os.environ, "ATTNWATCH_DASHBOARD__PORT": str(board)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env
    )
    seen = {"scraped": "", "feed": ""}

    def finished() -> bool:
        """Scrape while it runs (the last page with traffic is kept); True once it exited."""
        text = scrape(port)
        if metric(text, "attnwatch_messages_total") > 100:
            seen["scraped"] = text
            seen["feed"] = seen["feed"] or page(f"http://127.0.0.1:{board}/")
        return process.poll() is not None

    try:
        wait_for(finished, 150, "the demo finished", max_interval_s=0.5)
    finally:
        if process.poll() is None:
            process.kill()
    stdout, stderr = process.communicate(timeout=60)
    scraped, feed = seen["scraped"], seen["feed"]
    assert process.returncode == 0, stderr[-3000:]
    assert "done:" in stdout and "enriched" in stdout

    assert scraped, "never saw the run loop's metrics on /metrics"
    # The analyst dashboard ran beside the demo, on the demo's store.
    assert f"http://127.0.0.1:{board}/" in stdout
    assert "<html" in feed and "feed" in feed.lower(), feed[:500]
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
    assert len(events) + dead == 4000
    assert set(events["kind"]) == {"chat", "news"}
    assert {"customer", "agent"} <= set(events["role"].dropna())

    # The injected shift: exactly one alert, on the shifted channel, fired and resolved,
    # and shown in the live view's final frame with its evidence.
    alerts = AlertTable(create_engine(normalise_url(store_url))).rows(limit=20)
    assert [(a["scope_kind"], a["scope"], a["status"]) for a in alerts] == [
        ("channel", "app", "resolved")
    ], [a["payload"]["summary"] for a in alerts]
    payload = alerts[0]["payload"]
    assert payload["evidence"]
    # Evidence an analyst can act on: no example twice, what it fired on beside how it
    # ended, and rising words that are not the function words every chat is full of.
    texts = [e["text_excerpt"] for e in payload["evidence"]]
    assert len(texts) == len(set(texts)), texts
    assert payload["fired"] and payload["fired"]["current_share"] > payload["fired"][
        "baseline_share"
    ], payload
    rising = [w["word"] for w in payload["rising_words"]]
    assert "declined" in rising and not {"thanks", "please", "the", "to"} & set(rising), rising
    print("demo alert:", payload["summary"], "| rising:", rising, "| examples:", texts)
    assert "RESOLVED" in stdout and "chat channel 'app'" in stdout


def test_a_second_demo_on_the_same_checkout_streams_live_again(tiny_model, tmp_path):
    """Run twice in one directory: each run's events are new to the store, none deduped.

    The first run (no shift) writes its own store under ``var/demo/`` and fires no alert;
    the second is pointed at that same store, so only fresh ids keep its events from
    being skipped as duplicates of the first run's.
    """

    def demo(store_url: str | None) -> subprocess.CompletedProcess[str]:
        command = demo_command(
            tiny_model, store_url, free_port(), "--duration", "90", "--count", "1600",
            "--rate", "200", "--no-shift", "--no-dashboard",
        )  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, timeout=150
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    first = demo(None)
    found = re.search(r"sqlite:///(var/demo/\S+\.db)", first.stdout)
    assert found, first.stdout[-2000:]
    store_url = f"sqlite:///{tmp_path / found.group(1)}"
    events = read_events(store_url)
    assert len(events) + len(read_dead_letters(store_url)) == 1600
    # Event time spreads over a simulated day, not the run's few seconds.
    span = events["event_time"].max() - events["event_time"].min()
    assert span > pd.Timedelta(hours=23), span
    assert AlertTable(create_engine(normalise_url(store_url))).rows() == []
    assert "alerts: none" in first.stdout

    second = demo(store_url)
    done = re.findall(
        r"done: (\d+) enriched, (\d+) dead letters(?:, (\d+) already stored)?", second.stdout
    )
    enriched, dead, skipped = (int(n or 0) for n in done[-1])
    # A live stream again, not 0.  Only malformed events can be skipped as already stored:
    # the store keys dead letters by source offset, and the second run's embedded broker
    # numbers its offsets from 0 again, so a few may land on the first run's dead letters.
    assert enriched + dead + skipped == 1600, second.stdout[-2000:]
    assert skipped <= len(read_dead_letters(store_url)), second.stdout[-2000:]
    assert "waiting for the first results" not in second.stdout.split("done:")[0][-3000:]
    # It stopped once drained, skipped records counted, not at its 90 s --duration.
    (seconds,) = re.findall(r"done: .* in ([\d.]+) s", second.stdout)[-1:]
    assert float(seconds) < 90, second.stdout[-2000:]
    # Every event of the second run is stored beside the first run's: none deduplicated.
    # (Dead letters are not counted: the store keys them by source offset, and the second
    # run's embedded broker numbers its offsets from 0 again.)
    assert len(read_events(store_url)) == len(events) + enriched
