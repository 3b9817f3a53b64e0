"""The evaluator over a real store: one alert per episode with evidence, one resolve, restarts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.alerting.detectors import ShiftSettings
from pipeline.alerting.evaluator import AlertSettings, Evaluator
from pipeline.alerting.windows import Window
from pipeline.metrics import Metrics
from pipeline.schema import EnrichedEvent, LabelScore
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable
from tests.support.events import chat_event, task_result

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
WINDOW = Window(current_s=600, baseline_s=7200, lateness_s=60, bucket_s=60)
CALM = "the app works fine today"
ANGRY = "my card was declined again after the outage"


def chat(n: int, at: datetime, negative: bool, channel: str = "app") -> EnrichedEvent:
    text = ANGRY if negative else CALM
    words = text.split()
    weights = [1.0 / len(words)] * len(words)
    if negative:
        weights = [0.02] * len(words)
        weights[words.index("declined")] = 1.0 - 0.02 * (len(words) - 1)
    sentiment = task_result(
        "negative" if negative else "neutral",
        words=words,
        weights=weights,
        top=[LabelScore(label="negative", score=0.9)],
    )
    return chat_event(n, at, channel=channel, text=text, sentiment=sentiment)


def stream(start: datetime, minutes: int, per_minute: int, share: float, first: int, seed: int,
           channel: str = "app"):
    rng = random.Random(seed)
    return [
        chat(first + m * per_minute + i, start + timedelta(minutes=m, seconds=i),
             rng.random() < share, channel)
        for m in range(minutes)
        for i in range(per_minute)
    ]


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as opened:
        yield opened


def evaluator(store, owner="a", metrics=None, seen=None, settings=None):
    return Evaluator(store.engine, metrics or Metrics(), owner=owner,
                     settings=settings or AlertSettings(window=WINDOW),
                     on_event=seen.append if seen is not None else None)


def test_a_shift_fires_one_alert_with_evidence_then_resolves(store):
    baseline = stream(T0, 120, 10, 0.2, 0, seed=1)
    burst = stream(T0 + timedelta(minutes=120), 10, 10, 0.7, 10_000, seed=2)
    store.write(baseline + burst, [])
    seen = []
    metrics = Metrics()
    ev = evaluator(store, metrics=metrics, seen=seen)
    now = T0 + timedelta(minutes=129, seconds=50)
    fired = ev.evaluate(now)
    # overall chat shifted too, but only through channel app: one episode, one alert.
    assert [(e.status, e.scope_kind) for e in fired] == [("firing", "channel")]
    alert = fired[0]
    assert [(r.scope_kind, r.scope) for r in alert.related] == [("overall", "")]
    # Stepping bucket by bucket, it fires at the first bucket whose window passes the test.
    assert alert.scope == "app" and alert.current_share > alert.baseline_share + 0.1
    assert alert.starts_at < now - timedelta(minutes=3) and not alert.late
    assert alert.statistic >= 5 and alert.evidence
    assert all(e.text_excerpt == ANGRY for e in alert.evidence)
    assert alert.evidence[0].top_words[0] == "declined"
    assert alert.rising_words[0].word == "declined"
    assert metrics.shift_active.labels("channel", "app", "chat")._value.get() == 1
    # Evaluating again in the same episode fires nothing.
    assert ev.evaluate(now + timedelta(seconds=15)) == []
    # Calm again: resolved after three calm evaluations, once.
    store.write(stream(T0 + timedelta(minutes=130), 20, 10, 0.2, 20_000, seed=3), [])
    resolved = []
    for k in range(1, 8):
        resolved += ev.evaluate(now + timedelta(minutes=20, seconds=15 * k))
    assert [(e.status, e.alert_id) for e in resolved] == [("resolved", alert.alert_id)]
    assert resolved[0].ends_at is not None and resolved[0].related == alert.related
    # Same labels as when it fired (the fingerprint hashes them), and the same evidence.
    assert resolved[0].severity == alert.severity
    assert resolved[0].evidence == alert.evidence
    assert len(seen) == 2
    assert AlertTable(store.engine).rows(status="firing") == []


def test_no_alert_on_a_stationary_stream(store):
    store.write(stream(T0, 130, 10, 0.3, 0, seed=4), [])
    ev = evaluator(store)
    fired = []
    for k in range(40):
        fired += ev.evaluate(T0 + timedelta(minutes=100, seconds=15 * k))
    assert fired == []


@pytest.mark.slow
def test_a_restart_or_a_second_replica_does_not_fire_the_episode_again(store):
    store.write(stream(T0, 120, 10, 0.2, 0, seed=5)
                + stream(T0 + timedelta(minutes=120), 10, 10, 0.7, 10_000, seed=6), [])
    now = T0 + timedelta(minutes=129, seconds=50)
    assert evaluator(store, owner="a").evaluate(now)
    # A second replica waits for the lease.
    assert evaluator(store, owner="b").evaluate(now + timedelta(seconds=15)) == []
    # The first process restarts (same owner): the open episodes are resumed, not re-fired.
    restarted = evaluator(store, owner="a")
    assert restarted.evaluate(now + timedelta(seconds=30)) == []
    assert len(AlertTable(store.engine).rows(status="firing")) == 1
    # The holder died: after the lease expires the other replica takes over, silently.
    assert evaluator(store, owner="b").evaluate(now + timedelta(seconds=120)) == []


def test_the_alerts_command_lists_the_episode_with_its_evidence(store, tmp_path):
    from typer.testing import CliRunner

    from attnwatch.cli import app

    store.write(stream(T0, 120, 10, 0.2, 0, seed=7)
                + stream(T0 + timedelta(minutes=120), 10, 10, 0.7, 10_000, seed=8), [])
    evaluator(store).evaluate(T0 + timedelta(minutes=129, seconds=50))
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = CliRunner().invoke(app, ["--store-url", url, "alerts", "--status", "firing"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("[FIRING]") == 1 and "channel 'app'" in result.stdout
    assert "declined" in result.stdout and "rising words: declined" in result.stdout
    lines = CliRunner().invoke(app, ["--store-url", url, "alerts", "--json"]).stdout.splitlines()
    assert len(lines) == 1 and '"status": "firing"' in lines[0]
    bad = CliRunner().invoke(app, ["--store-url", url, "alerts", "--status", "open"])
    assert bad.exit_code == 2


def test_an_unrelated_shift_in_the_same_stream_fires_its_own_alert(store):
    # Web and app both calm for two hours; then each has a burst of its own.
    store.write(
        stream(T0, 120, 10, 0.2, 0, seed=11, channel="app")
        + stream(T0, 120, 10, 0.2, 100_000, seed=12, channel="web")
        + stream(T0 + timedelta(minutes=120), 10, 10, 0.7, 10_000, seed=13, channel="app"),
        [],
    )
    ev = evaluator(store)
    now = T0 + timedelta(minutes=129, seconds=50)
    first = ev.evaluate(now)
    assert [(e.scope_kind, e.scope) for e in first] == [("channel", "app")]
    assert [(r.scope_kind, r.scope) for r in first[0].related] == [("overall", "")]
    # Ten minutes later web shifts on its own: without app's messages it is still a
    # shift, so it is a second episode, not part of app's.
    store.write(
        stream(T0 + timedelta(minutes=130), 10, 10, 0.7, 20_000, seed=14, channel="app")
        + stream(T0 + timedelta(minutes=130), 10, 10, 0.8, 110_000, seed=15, channel="web"),
        [],
    )
    second = ev.evaluate(now + timedelta(minutes=10))
    assert [(e.scope_kind, e.scope, e.status) for e in second] == [("channel", "web", "firing")]


@pytest.mark.slow
def test_a_gradual_drift_opens_an_episode_the_window_test_misses(store):
    # 6 hours at 30%, then a slow rise to 60% over 6 hours; the window test is switched
    # off (z_open 40) so only Page-Hinkley can open the episode.
    rng = random.Random(31)
    events, n = [], 0
    for m in range(720):
        share = 0.3 + 0.3 * max(0.0, min(1.0, (m - 360) / 360))
        for i in range(12):
            events.append(chat(n, T0 + timedelta(minutes=m, seconds=5 * i), rng.random() < share))
            n += 1
    store.write(events, [])
    settings = AlertSettings(
        window=Window(current_s=900, baseline_s=6 * 3600, lateness_s=60, bucket_s=60),
        shift=ShiftSettings(z_open=40.0),
    )
    ev = evaluator(store, settings=settings)
    fired = []
    for k in range(0, 720 - 16, 5):  # every five minutes, as the data arrives
        fired += ev.evaluate(T0 + timedelta(minutes=16 + k))
    firing = [e for e in fired if e.status == "firing"]
    assert len(firing) == 1 and firing[0].detector == "page_hinkley"
    assert firing[0].starts_at > T0 + timedelta(minutes=360)
