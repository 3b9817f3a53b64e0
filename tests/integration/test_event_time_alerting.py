"""Alerting in event time through the real broker: backlogs, a SIGKILL mid-catch-up, idle streams.

Eight hours of chats with event times in the past (a consumer catching up after an outage,
or a backfill of yesterday) on four channels, one 45-minute burst of negative chats on
``app``, produced to ``chat`` before ``attnwatch run`` starts: the evaluator steps through
every closed bucket and raises exactly the one episode the backlog holds, with its resolve.
"""

from __future__ import annotations

import json
import random
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attnwatch.service import service
from attnwatch.settings import Settings
from consumers.broker import EmbeddedBroker
from pipeline.store.alerts import AlertTable
from pipeline.store.engine import create_engine, normalise_url
from tests.integration.helpers import make_topics, read_topic, unique_settings
from tests.integration.processes import Worker, worker_env
from tests.integration.test_alerting import evaluated, mixed, produce, texts_by_label
from tests.integration.test_faults import LoopThread
from tests.support.waiting import wait_for

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Production-shaped windows (1-minute buckets, 15-minute window), a 4-hour baseline so the
#: backlog's first half warms it, volumes for one chat a minute per channel.
WINDOWS: dict[str, float] = {
    "alert_bucket_s": 60,
    "alert_current_s": 900,
    "alert_lateness_s": 120,
    "alert_baseline_s": 4 * 3600,
    "alert_interval_s": 0.5,
    "alert_min_current": 10,
    "alert_min_baseline": 100,
    "alert_lease_ttl_s": 5,
}
CHANNELS = ("app", "web", "phone", "email")
BURST_AT_H = 4.0


Chat = tuple[str, str, datetime]


def backlog(negative: list[str], calm: list[str], start: datetime) -> list[Chat]:
    """8 h, one chat a minute per channel at 25% negative; 45 min of app at 4/min, 75%."""
    rng = random.Random(24)
    chats: list[Chat] = []
    for minute in range(8 * 60):
        burst = BURST_AT_H * 60 <= minute < BURST_AT_H * 60 + 45
        for channel in CHANNELS:
            per_minute, share = (4, 0.75) if burst and channel == "app" else (1, 0.25)
            for i in range(per_minute):
                text = rng.choice(negative if rng.random() < share else calm)
                at = start + timedelta(minutes=minute, seconds=i * 60 // per_minute + 7)
                chats.append((channel, text, at))
    return chats


def check_one_episode(
    settings: Settings, broker: EmbeddedBroker, start: datetime, *, killed: bool = False
) -> None:
    """Exactly one alert, on channel app inside the burst, fired and resolved once.

    ``killed``: a process was SIGKILLed on the way, and the alerts topic is at-least-once
    (``pipeline.alerting.relay``: a kill between a publish and its outbox mark publishes that
    event again), so the topic is read as its consumers do, deduplicated on
    (status, alert_id); the alerts table still holds exactly one episode.
    """
    alerts = AlertTable(create_engine(normalise_url(settings.store_url)))
    rows = alerts.rows(limit=100)
    assert [(r["scope_kind"], r["scope"], r["status"]) for r in rows] == [
        ("channel", "app", "resolved")
    ], [r["alert_id"] for r in rows]
    burst = start + timedelta(hours=BURST_AT_H)
    assert burst <= rows[0]["starts_at"] < burst + timedelta(minutes=45)
    assert rows[0]["starts_at"] < rows[0]["ends_at"] < burst + timedelta(minutes=90)
    records = read_topic(broker.connection, settings.topic_alerts, 2)
    events = [json.loads(r.value) for r in records]
    published = [(e["status"], e["alert_id"]) for e in events]
    expected = [("firing", rows[0]["alert_id"]), ("resolved", rows[0]["alert_id"])]
    if killed:
        # Each event at most once more (the one in flight at the kill), in order.
        assert len(published) <= len(expected) + 1, published
        published = list(dict.fromkeys(published))
    assert published == expected
    assert all(e["late"] and e["detection_delay_s"] > 3600 for e in events)
    assert "found late" in events[0]["summary"]


@pytest.fixture
def chats(tiny_model: Path) -> tuple[list[str], list[str]]:
    return texts_by_label(tiny_model)


#: --idle-exit counts from the start of the loop, the consumer group's join included (about
#: 3.2 s on this broker with the tests' 6 s session, helpers.SESSION_TIMEOUT_MS): 10 s leaves
#: room for it, and is what each run idles at its end.
IDLE_EXIT = "10"


def test_an_eight_hour_backlog_raises_its_one_episode_and_resolves_it(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, chats: tuple[list[str], list[str]]
) -> None:
    settings = unique_settings(
        f"sqlite:///{tmp_path / 'backlog.db'}", tiny_model,
        bootstrap_servers=broker.bootstrap_servers, **WINDOWS,
    )  # fmt: skip
    make_topics(settings, broker.connection)
    start = datetime.now(UTC) - timedelta(hours=11)  # an outage of three hours
    produce(settings, broker.connection, backlog(*chats, start), 0)
    with Worker(["attnwatch", "run", "--idle-exit", IDLE_EXIT], worker_env(settings),
                tmp_path / "logs") as worker:  # fmt: skip
        assert worker.wait(600) == 0, worker.tail()
        final = worker.wait_for_log("final alert evaluation", 1)
        assert final["leading"] is True
    check_one_episode(settings, broker, start)


def test_a_sigkill_halfway_through_the_catch_up_still_raises_it_once(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, chats: tuple[list[str], list[str]]
) -> None:
    settings = unique_settings(
        f"sqlite:///{tmp_path / 'killed.db'}", tiny_model,
        bootstrap_servers=broker.bootstrap_servers, **WINDOWS,
    )  # fmt: skip
    make_topics(settings, broker.connection)
    start = datetime.now(UTC) - timedelta(hours=11)
    produce(settings, broker.connection, backlog(*chats, start), 0)
    env = worker_env(settings)
    halfway = start + timedelta(hours=BURST_AT_H, minutes=20)  # inside the episode
    with Worker(["attnwatch", "run"], env, tmp_path / "logs") as first:
        wait_for(lambda: (evaluated(settings.store_url) or start) >= halfway, 400,
                 "the catch-up half done")  # fmt: skip
        assert first.kill() == -signal.SIGKILL
    assert (evaluated(settings.store_url) or start) < start + timedelta(hours=8)
    command = ["attnwatch", "run", "--idle-exit", IDLE_EXIT]
    with Worker(command, env, tmp_path / "logs") as second:
        assert second.wait(600) == 0, second.tail()
    check_one_episode(settings, broker, start, killed=True)


def test_an_episode_on_a_stream_that_went_quiet_resolves(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, chats: tuple[list[str], list[str]]
) -> None:
    """Live, short windows: a burst, then nothing at all; processing time moves the watermark."""
    negative, calm = chats
    settings = unique_settings(
        f"sqlite:///{tmp_path / 'idle.db'}", tiny_model,
        alert_bucket_s=2, alert_current_s=20, alert_lateness_s=2, alert_baseline_s=600,
        alert_interval_s=0.5, alert_min_baseline=100, alert_idle_s=3,
    )  # fmt: skip
    make_topics(settings, broker.connection)
    alerts = AlertTable(create_engine(normalise_url(settings.store_url)))
    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(seconds=140)
    with service(settings, broker.connection) as svc:
        loop = LoopThread(svc)
        produce(settings, broker.connection,
                mixed(rng, 480, start, 118, 0.2, negative, calm, ("app", "web")), 0)  # fmt: skip
        wait_for(lambda: loop.handled() >= 480, 90, "the baseline stored")
        burst = mixed(rng, 120, datetime.now(UTC) - timedelta(seconds=3), 3, 0.9, negative,
                      calm, ("app",))  # fmt: skip
        produce(settings, broker.connection, burst, 480)
        wait_for(lambda: alerts.rows(status="firing") != [], 60, "an alert fired")
        # Nothing more is produced: the episode still ends.
        wait_for(lambda: alerts.rows(status="resolved") != [], 90, "the quiet stream resolved")
        loop.finish()
    rows = alerts.rows(limit=10)
    assert [(r["scope"], r["status"]) for r in rows] == [("app", "resolved")]
