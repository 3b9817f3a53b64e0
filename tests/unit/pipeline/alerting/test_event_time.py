"""Event-time evaluation over a real store: backlogs, restarts mid-backlog, idle streams."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pipeline.alerting.detectors import DriftDetector, ShiftSettings
from pipeline.alerting.evaluator import AlertSettings, Evaluator
from pipeline.alerting.notify import Notifier, Receiver
from pipeline.alerting.payloads import alert_annotations, slack_payload
from pipeline.alerting.sliding import Sliding
from pipeline.alerting.windows import Window, read_buckets
from pipeline.metrics import Metrics
from pipeline.store.alerts import AlertTable
from pipeline.store.outbox import Outbox, outbox_table
from tests.unit.pipeline.alerting.test_evaluator import T0, chat, store  # noqa: F401

WINDOW = Window(current_s=900, baseline_s=4 * 3600, lateness_s=120, bucket_s=60)
SETTINGS = AlertSettings(
    window=WINDOW,
    shift=ShiftSettings(min_current=20, min_baseline=100, cooldown_s=900),
    idle_s=300,
    late_after_s=600,
    chunk_buckets=30,
)
CHANNELS = ("app", "web", "phone", "email")


def backlog(hours: int = 8, burst_at: float = 4.0, seed: int = 3) -> list:
    """``hours`` of chats on four channels, 25% negative; 45 minutes at 75% on app."""
    rng = random.Random(seed)
    events, n = [], 0
    for minute in range(hours * 60):
        in_burst = burst_at * 60 <= minute < burst_at * 60 + 45
        for channel in CHANNELS:
            per_minute = 4 if in_burst and channel == "app" else 2
            share = 0.75 if in_burst and channel == "app" else 0.25
            for i in range(per_minute):
                at = T0 + timedelta(minutes=minute, seconds=i * 60 // per_minute)
                events.append(chat(n, at, rng.random() < share, channel))
                n += 1
    return events


def make(store, owner="a", seen=None, settings=SETTINGS, notifier=None):  # noqa: F811
    return Evaluator(store.engine, Metrics(), owner=owner, settings=settings,
                     notifier=notifier, on_event=seen.append if seen is not None else None)


def test_a_backlog_raises_the_alert_it_contains_once_marked_late(store):  # noqa: F811
    store.write(backlog(), [])
    seen = []
    # Evaluated a day after the fact, in one call: every closed bucket, in order.
    events = make(store, seen=seen).evaluate(T0 + timedelta(hours=32))
    assert [(e.status, e.scope_kind, e.scope) for e in events] == [
        ("firing", "channel", "app"), ("resolved", "channel", "app")]
    firing, resolved = events
    burst = T0 + timedelta(hours=4)
    assert burst < firing.starts_at < burst + timedelta(minutes=45)
    assert firing.starts_at < resolved.ends_at < burst + timedelta(minutes=45 + 30)
    assert firing.late and resolved.late and "found late" in firing.summary
    assert firing.detection_delay_s > 20 * 3600
    # Notifications say so: the summary, and the annotations beside it.
    annotations = alert_annotations(firing)
    assert annotations["late"] == "true" and "found late" in annotations["summary"]
    assert int(annotations["detection_delay_s"]) > 20 * 3600
    assert "found late" in slack_payload(firing).model_dump_json()
    assert seen == events
    # Nothing more: the next evaluation has no new closed bucket.
    assert make(store).evaluate(T0 + timedelta(hours=32, minutes=1)) == []


@pytest.mark.slow
def test_a_crash_mid_backlog_goes_on_where_it_stopped(store):  # noqa: F811
    store.write(backlog(), [])
    seen = []

    class Crash(Exception):
        pass

    class Crashing(Evaluator):
        saves = 0

        def _save(self, stream, now):
            super()._save(stream, now)
            Crashing.saves += 1
            if Crashing.saves == 9:  # mid-burst (chunks of 30 buckets: bucket ~270)
                raise Crash

    crashing = Crashing(store.engine, Metrics(), owner="a", settings=SETTINGS,
                        on_event=seen.append)
    now = T0 + timedelta(hours=32)
    with pytest.raises(Crash):
        crashing.evaluate(now)
    # The same process restarted (same owner): state from the store, not from memory.
    seen += make(store, owner="a").evaluate(now + timedelta(seconds=15))
    rows = AlertTable(store.engine).rows(limit=10)
    assert [(r["scope_kind"], r["scope"], r["status"]) for r in rows] == [
        ("channel", "app", "resolved")]
    assert [(e.status, e.alert_id) for e in seen] == [
        ("firing", rows[0]["alert_id"]), ("resolved", rows[0]["alert_id"])]


@pytest.mark.parametrize("crash_at", range(1, 14, 3))
@pytest.mark.slow
def test_a_restart_at_any_save_fires_and_resolves_exactly_once(store, crash_at):  # noqa: F811
    """Killed right after any save, or between a recorded alert and its save."""
    store.write(backlog(), [])
    seen = []
    evaluator = make(store, seen=seen)
    calls = 0
    original = evaluator._save

    def save(stream, now):
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise KeyboardInterrupt  # before saving: the step is replayed
        original(stream, now)

    evaluator._save = save
    now = T0 + timedelta(hours=32)
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(now)
    seen += make(store, owner="a", seen=[]).evaluate(now)
    statuses = [(r["scope"], r["status"]) for r in AlertTable(store.engine).rows(limit=10)]
    assert statuses == [("app", "resolved")]
    assert sorted(e.status for e in seen) == ["firing", "resolved"]


@pytest.mark.slow
def test_an_open_episode_on_a_quiet_stream_resolves_by_processing_time(store):  # noqa: F811
    # The backlog ends inside the burst: the episode is open at the last event.
    events = [e for e in backlog() if e.event_time < T0 + timedelta(hours=4, minutes=40)]
    store.write(events, [])
    last = max(e.event_time for e in events)
    ev = make(store)
    fired = ev.evaluate(last + timedelta(seconds=30))
    assert [e.status for e in fired] == ["firing"]
    # Quiet for less than idle_s: the watermark holds.
    assert ev.evaluate(last + timedelta(seconds=200)) == []
    # Quiet for longer: event time goes on with processing time; empty windows are calm.
    resolved = []
    for minutes in range(6, 40):
        resolved += ev.evaluate(last + timedelta(minutes=minutes))
    assert [e.status for e in resolved] == ["resolved"]
    assert resolved[0].alert_id == fired[0].alert_id


@pytest.mark.slow
def test_history_record_notifies_only_what_is_still_open_at_the_watermark(store):  # noqa: F811
    outbox = Outbox(store.engine)
    notifier = Notifier(outbox, [Receiver(name="oncall", url="http://127.0.0.1:9/hook")],
                        "http://x")
    settings = AlertSettings(**{**SETTINGS.__dict__, "history": "record"})
    # Yesterday's burst (fired and resolved in history), then a second burst on web that
    # is still open when the backlog ends.
    events = backlog()
    rng = random.Random(5)
    tail = [chat(900_000 + i, T0 + timedelta(hours=8, seconds=10 * i), rng.random() < 0.9, "web")
            for i in range(150)]
    # Stored just now, as a consumer catching up stores them: the stream is not idle.
    now = T0 + timedelta(hours=30)
    stored = [e.model_copy(update={"processed_time": now - timedelta(seconds=10)})
              for e in events + tail]
    store.write(stored, [])
    seen = []
    make(store, seen=seen, settings=settings, notifier=notifier).evaluate(now)
    assert all(e.late for e in seen)
    assert sorted((e.scope, e.status) for e in seen) == [
        ("app", "firing"), ("app", "resolved"), ("web", "firing")]
    with store.engine.connect() as conn:
        queued = conn.execute(sa.select(outbox_table.c.alert_id, outbox_table.c.status)).all()
    web = next(e for e in seen if e.scope == "web")
    assert queued == [(web.alert_id, "firing")]


@pytest.mark.slow
def test_history_notify_pages_for_the_backlog_too(store):  # noqa: F811
    outbox = Outbox(store.engine)
    notifier = Notifier(outbox, [Receiver(name="oncall", url="http://127.0.0.1:9/hook")],
                        "http://x")
    store.write(backlog(), [])
    make(store, notifier=notifier).evaluate(T0 + timedelta(hours=30))
    with store.engine.connect() as conn:
        queued = sorted(conn.execute(sa.select(outbox_table.c.status)).scalars())
    assert queued == ["firing", "resolved"]


def test_the_final_watermark_closes_the_last_bucket(store):  # noqa: F811
    events = [e for e in backlog() if e.event_time < T0 + timedelta(hours=4, minutes=40)]
    store.write(events, [])
    last = max(e.event_time for e in events)
    ev = make(store)
    # Live, the last buckets are within the lateness: not evaluated yet.
    ev.evaluate(last + timedelta(seconds=1))
    with store.engine.connect() as conn:
        before = conn.execute(sa.text("select evaluated from alert_progress")).scalar_one()
    ev.evaluate(last + timedelta(seconds=2), final=True)
    with store.engine.connect() as conn:
        after = conn.execute(sa.text("select evaluated from alert_progress")).scalar_one()
    assert str(before) < str(after) and str(after).startswith(
        last.replace(second=0).strftime("%Y-%m-%d %H:%M"))


def test_the_sliding_window_matches_a_full_comparison(store):  # noqa: F811
    store.write(backlog(hours=3), [])
    window = Window(current_s=600, baseline_s=3600, lateness_s=60, bucket_s=60)
    buckets = read_buckets(store.engine, T0, T0 + timedelta(hours=3))
    sliding = Sliding(window)
    for minute in range(0, 180, 1):
        at = T0 + timedelta(minutes=minute)
        got = sliding.advance(at, [b for b in buckets if b.start == at])
        want = window.compare(buckets, at)
        assert {k: (v.current.n, v.current.negative, v.baseline.n, v.baseline.negative)
                for k, v in got.items()} == {
            k: (v.current.n, v.current.negative, v.baseline.n, v.baseline.negative)
            for k, v in want.items()}
    assert sliding.buckets() <= (3600 + 600) // 60 * len({b.key for b in buckets})
    with pytest.raises(ValueError, match="slide back"):
        sliding.advance(T0, [])


def test_a_restored_drift_detector_goes_on_exactly_as_the_original():
    rng = random.Random(2)
    shares = [0.3] * 60 + [0.3 + 0.005 * i for i in range(120)]
    a, b = DriftDetector(), None
    out_a, out_b = [], []
    for i, p in enumerate(shares):
        at = T0 + timedelta(minutes=i)
        neg = sum(rng.random() < p for _ in range(20))
        if i == 70:
            b = DriftDetector()
            b.restore(json.loads(json.dumps(a.state())))
        out_a.append(a.update(at, neg, 20))
        if b is not None:
            out_b.append(b.update(at, neg, 20))
    assert any(out_a) and out_a[70:] == out_b
