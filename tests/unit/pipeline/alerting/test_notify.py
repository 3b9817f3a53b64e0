"""Notifications: payload shapes, delivery through the outbox, retries, restarts, slow receivers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from pipeline.alerting.model import AlertEvent
from pipeline.alerting.notify import Notifier, NotifierWorker, Receiver, post_json
from pipeline.alerting.payloads import (
    AlertmanagerWebhook,
    SlackMessage,
    alertmanager_payload,
    fingerprint,
)
from pipeline.alerting.relay import TopicRelay
from pipeline.errors import StoreError
from pipeline.store.engine import create_engine, normalise_url
from pipeline.store.migrate import migrate
from pipeline.store.outbox import Message, Outbox, backoff_s
from tests.support.waiting import wait_for

# Field names of Alertmanager's webhook payload, version 4 (Alertmanager's configuration docs).
AM_FIELDS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}
AM_ALERT_FIELDS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}
START = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
EXCERPT = "my card was charged twice and nobody answers"


class Recorder:
    """A local HTTP receiver: records every POST and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, hang: threading.Event | None = None):
        self.posts: list[tuple[str, dict[str, str], bytes, int]] = []
        self.statuses = list(statuses or [])
        self.hang = hang
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if recorder.hang is not None:
                    recorder.hang.wait(10)
                with recorder.lock:
                    status = recorder.statuses.pop(0) if recorder.statuses else 200
                    recorder.posts.append((self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"boom")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def bodies(self, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for _, _, b, s in self.posts if status in (None, s)]

    def close(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Recorder]]:
    started: list[Recorder] = []

    def make(*args: Any, **kwargs: Any) -> Recorder:
        recorder = Recorder(*args, **kwargs)
        started.append(recorder)
        return recorder

    yield make
    for recorder in started:
        recorder.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/store.db"
    migrate(url)  # the schema is Alembic's; nothing creates tables on first use
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(normalise_url(db_url))
    yield engine
    engine.dispose()


@pytest.fixture
def workers() -> Iterator[Callable[..., NotifierWorker]]:
    started: list[NotifierWorker] = []

    def make(outbox: Outbox, recvs: list[Receiver], **kwargs: Any) -> NotifierWorker:
        kwargs.setdefault("base_backoff_s", 0.02)
        kwargs.setdefault("poll_interval_s", 0.02)
        worker = NotifierWorker(outbox, recvs, **kwargs)
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop(5)


def event(status: str = "firing", **overrides: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "alert_id": "chat:channel:billing:2026-11-26T09:30:00Z",
        "status": status,
        "scope_kind": "channel",
        "scope": "billing",
        "stream": "chat",
        "severity": "critical",
        "starts_at": START,
        "ends_at": START + timedelta(minutes=40) if status == "resolved" else None,
        "summary": "Negative sentiment on channel billing rose to 46%",
        "baseline_share": 0.12,
        "current_share": 0.46,
        "baseline_n": 5210,
        "current_n": 180,
        "statistic": 7.31,
        "detector": "two_proportion_z",
        "evidence": [
            {"text_excerpt": EXCERPT, "sentiment_score": 0.97, "top_words": ["charged", "twice"]},
            {"text_excerpt": "refund please", "sentiment_score": 0.8, "top_words": ["refund"]},
        ],
        "rising_words": [{"word": "charged", "baseline": 0.001, "current": 0.04}],
        "generator_url": "http://attnwatch.example/alerts/1",
    }
    values.update(overrides)
    return AlertEvent.model_validate(values)


def test_fingerprint_matches_prometheus_label_signatures() -> None:
    # Expected values: prometheus/common model/signature_test.go (TestLabelsToSignature).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint(labels) == f"{5799056148416392346:016x}"
    assert fingerprint(dict(reversed(labels.items()))) == fingerprint(labels)
    assert fingerprint({**labels, "name": "garland"}) != fingerprint(labels)


def test_alertmanager_payload_is_delivered_in_alertmanager_shape(
    engine: Engine, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    am = receivers()
    outbox = Outbox(engine)
    receiver = Receiver(name="oncall", url=am.url, timeout_s=2)
    Notifier(outbox, [receiver], "http://attnwatch.example").notify(event())
    workers(outbox, [receiver])
    wait_for(lambda: len(am.posts) == 1, 10, "len(am.posts) == 1")

    path, headers, raw, _ = am.posts[0]
    assert path == "/hook"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert set(body) == AM_FIELDS
    assert set(body["alerts"][0]) == AM_ALERT_FIELDS
    parsed = AlertmanagerWebhook.model_validate_json(raw)
    assert parsed.version == "4"
    assert parsed.status == "firing"
    assert parsed.receiver == "oncall"
    assert parsed.externalURL == "http://attnwatch.example"
    assert parsed.truncatedAlerts == 0
    alert = parsed.alerts[0]
    assert alert.labels == {
        "alertname": "AttnwatchSentimentShift",
        "alert_id": "chat:channel:billing:2026-11-26T09:30:00Z",
        "severity": "critical",
        "stream": "chat",
        "scope_kind": "channel",
        "scope": "billing",
    }
    assert alert.fingerprint == fingerprint(alert.labels)
    assert body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert body["alerts"][0]["startsAt"] == "2026-11-26T09:30:00Z"
    assert alert.generatorURL == "http://attnwatch.example/alerts/1"
    annotations = alert.annotations
    assert annotations["summary"] == "Negative sentiment on channel billing rose to 46%"
    assert "46.0% over 180 messages" in annotations["description"]
    assert "12.0% over 5210" in annotations["description"]
    assert annotations["evidence_words"] == "charged, twice, refund"
    assert annotations["current_n"] == "180"
    assert "charged" in annotations["rising_words"]
    assert parsed.groupLabels == {
        "alertname": "AttnwatchSentimentShift",
        "stream": "chat",
        "scope_kind": "channel",
        "scope": "billing",
    }
    assert parsed.groupKey.startswith("{}:{alertname=")
    assert parsed.commonLabels == alert.labels
    # Customer text stays in the store.
    assert EXCERPT.encode() not in raw


def test_resolved_alert_sends_resolved_with_ends_at(
    engine: Engine, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    am = receivers()
    outbox = Outbox(engine)
    receiver = Receiver(name="oncall", url=am.url, timeout_s=2)
    notifier = Notifier(outbox, [receiver], "http://attnwatch.example")
    assert notifier.notify(event("firing")) == 1
    assert notifier.notify(event("resolved")) == 1
    workers(outbox, [receiver])
    wait_for(lambda: len(am.posts) == 2, 10, "len(am.posts) == 2")

    by_status = {b["status"]: b for b in am.bodies()}
    resolved = by_status["resolved"]
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-11-26T10:10:00Z"
    assert resolved["alerts"][0]["startsAt"] == "2026-11-26T09:30:00Z"
    # Same episode, same labels: a receiver matches the resolve to the firing alert.
    firing = by_status["firing"]
    assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]


def test_a_failing_receiver_gets_the_alert_exactly_once_after_retries(
    engine: Engine, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    flaky = receivers(statuses=[500, 500, 500])
    outbox = Outbox(engine)
    receiver = Receiver(name="flaky", url=flaky.url, timeout_s=2)
    Notifier(outbox, [receiver], "http://x").notify(event())
    worker = workers(outbox, [receiver])
    wait_for(
        lambda: outbox.rows()[0].delivered_at is not None,
        10,
        "outbox.rows()[0].delivered_at is not None",
    )
    assert worker.stop(5)  # every POST the worker made has been answered and recorded
    # Nothing of the receiver's is due any more, so no extra send can follow.
    assert outbox.claim("flaky", 10, lease_s=1) == []

    assert [s for *_, s in flaky.posts] == [500, 500, 500, 200]
    assert len(flaky.bodies(200)) == 1
    (row,) = outbox.rows()
    assert row.attempts == 4
    assert row.last_error is None
    # The retried body is the same notification each time.
    assert len({json.dumps(b, sort_keys=True) for b in flaky.bodies()}) == 1


def test_notify_returns_fast_while_a_receiver_hangs(
    engine: Engine, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    hang = threading.Event()
    slow = receivers(hang=hang)
    fast = receivers()
    outbox = Outbox(engine)
    recvs = [
        Receiver(name="slow", url=slow.url, timeout_s=5),
        Receiver(name="fast", url=fast.url, timeout_s=5),
    ]
    notifier = Notifier(outbox, recvs, "http://x")
    workers(outbox, recvs)
    notifier.notify(event(alert_id="a1"))
    wait_for(
        lambda: len(fast.posts) == 1, 10, "len(fast.posts) == 1"
    )  # the slow receiver's POST is now hanging

    took = []
    for i in range(5):
        began = time.perf_counter()
        assert notifier.notify(event(alert_id=f"b{i}")) == 2
        took.append(time.perf_counter() - began)
    # Median: one fsync stall of a shared CI disk is not what this guards against.
    assert sorted(took)[2] < 0.05, took
    # The hanging receiver does not hold up the other one either.
    wait_for(lambda: len(fast.posts) == 6, 3, "len(fast.posts) == 6")
    assert slow.posts == []

    hang.set()
    wait_for(
        lambda: all(r.delivered_at is not None for r in outbox.rows()),
        10,
        "every row delivered",
    )
    assert len(slow.posts) == 6


def test_a_restarted_worker_delivers_what_was_pending(
    db_url: str, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    down = receivers(statuses=[503] * 1000)
    first_engine = create_engine(normalise_url(db_url))
    outbox = Outbox(first_engine)
    first = [Receiver(name="oncall", url=down.url, timeout_s=2)]
    Notifier(outbox, first, "http://x").notify(event())
    worker = workers(outbox, first)
    wait_for(lambda: outbox.rows()[0].attempts >= 1, 10, "outbox.rows()[0].attempts >= 1")
    assert worker.stop(5)
    first_engine.dispose()
    assert down.bodies(200) == []

    # A new process: new engine, new worker, the receiver back at a new address.
    up = receivers()
    second_engine = create_engine(normalise_url(db_url))
    try:
        outbox = Outbox(second_engine)
        (pending,) = outbox.rows(undelivered_only=True)
        assert pending.last_error is not None and pending.last_error.startswith("HTTP 503")
        second = workers(outbox, [Receiver(name="oncall", url=up.url, timeout_s=2)])
        wait_for(lambda: len(up.posts) == 1, 10, "len(up.posts) == 1")
        wait_for(
            lambda: outbox.rows()[0].delivered_at is not None,
            10,
            "outbox.rows()[0].delivered_at is not None",
        )
        assert second.stop(5)
        assert outbox.claim("oncall", 10, lease_s=1) == []
        assert len(up.posts) == 1
        assert up.bodies()[0]["alerts"][0]["labels"]["alert_id"] == event().alert_id
    finally:
        second_engine.dispose()


def test_drain_sends_what_is_due_once_before_exit(
    engine: Engine, receivers: Callable[..., Recorder]
) -> None:
    up, down = receivers(), receivers(statuses=[503] * 1000)
    outbox = Outbox(engine)
    recvs = [
        Receiver(name="up", url=up.url, timeout_s=2),
        Receiver(name="down", url=down.url, timeout_s=2),
    ]
    Notifier(outbox, recvs, "http://x").notify(event())
    Notifier(outbox, recvs, "http://x").notify(event("resolved"))
    worker = NotifierWorker(outbox, recvs, base_backoff_s=60, max_backoff_s=60)  # not started

    assert worker.drain(timeout=10) == 4
    assert [b["alerts"][0]["status"] for b in up.bodies()] == ["firing", "resolved"]
    by_receiver = {r.receiver: r for r in outbox.rows()}
    assert len(outbox.rows()) == 4 and len(by_receiver) == 2
    assert all(r.delivered_at is not None for r in outbox.rows() if r.receiver == "up")
    # The failing receiver was tried once per row, not retried in a loop until the bound.
    assert len(down.posts) == 2
    assert all(
        r.attempts == 1 and r.delivered_at is None for r in outbox.rows() if r.receiver == "down"
    )


def test_enqueue_is_idempotent_per_alert_status_and_receiver(engine: Engine) -> None:
    outbox = Outbox(engine)
    recvs = [
        Receiver(name="a", url="http://127.0.0.1:9/a"),
        Receiver(name="b", url="http://127.0.0.1:9/b", format="slack"),
    ]
    notifier = Notifier(outbox, recvs, "http://x")
    assert notifier.notify(event()) == 2
    assert notifier.notify(event()) == 0
    assert notifier.notify(event("resolved")) == 2
    assert notifier.notify(event(alert_id="other")) == 2
    first = event().alert_id
    assert sorted((r.alert_id, r.status, r.receiver) for r in outbox.rows()) == [
        (first, "firing", "a"),
        (first, "firing", "b"),
        (first, "resolved", "a"),
        (first, "resolved", "b"),
        ("other", "firing", "a"),
        ("other", "firing", "b"),
    ]


def test_failures_back_off_exponentially_up_to_the_cap_and_are_never_dropped(
    engine: Engine,
) -> None:
    outbox = Outbox(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    outbox.enqueue([Message("a1", "firing", "r", {"x": 1})], now=now)
    delays = []
    for _ in range(12):
        (row,) = outbox.claim("r", 10, lease_s=30, now=now)
        due = outbox.mark_failed(row.id, "HTTP 500", max_backoff_s=60, now=now)
        assert due is not None
        assert outbox.claim("r", 10, lease_s=30, now=due - timedelta(microseconds=1)) == []
        delays.append((due - now).total_seconds())
        now = due
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60]
    (row,) = outbox.rows(undelivered_only=True)
    assert row.attempts == 12
    assert row.last_error == "HTTP 500"
    assert backoff_s(10_000, max_backoff_s=300) == 300


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(engine: Engine) -> None:
    outbox = Outbox(engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    outbox.enqueue([Message("a1", "firing", "r", {})], now=now)
    assert len(outbox.claim("r", 10, lease_s=15, now=now)) == 1
    assert outbox.claim("r", 10, lease_s=15, now=now + timedelta(seconds=14)) == []
    (again,) = outbox.claim("r", 10, lease_s=15, now=now + timedelta(seconds=15))
    outbox.mark_delivered(again.id, now=now + timedelta(seconds=16))
    assert outbox.claim("r", 10, lease_s=15, now=now + timedelta(days=1)) == []
    assert outbox.claim("other", 10, lease_s=15, now=now + timedelta(days=1)) == []


def test_a_new_leader_publishes_what_a_killed_one_left_claimed(engine: Engine) -> None:
    # The old leader queued and claimed the resolved event, then died before publishing it:
    # its 60 s claim would outlive a short successor (run --idle-exit), and the event would
    # never reach the topic (seen in the SIGKILL catch-up test).
    outbox, published = Outbox(engine), []
    old = TopicRelay(outbox, lambda key, value: published.append(key), lease_s=60)
    resolved = event("resolved")
    outbox.enqueue([Message(resolved.alert_id, "resolved", old.receiver, {})])
    assert len(outbox.claim(old.receiver, 10, lease_s=60)) == 1  # then SIGKILL
    new = TopicRelay(outbox, lambda key, value: published.append(key), lease_s=60)
    assert new.publish_due() == 0  # still held by the dead leader's claim
    assert new.take_over() == 1
    assert published == [resolved.alert_id.encode()]
    assert outbox.rows(undelivered_only=True) == []
    assert new.take_over() == 0  # delivered rows stay delivered


def test_slack_payload_has_summary_shares_counts_and_evidence_words(
    engine: Engine, receivers: Callable[..., Recorder], workers: Callable[..., NotifierWorker]
) -> None:
    slack = receivers()
    outbox = Outbox(engine)
    receiver = Receiver(name="team", url=slack.url, format="slack", timeout_s=2)
    Notifier(outbox, [receiver], "http://x").notify(event(scope="<billing & co>"))
    workers(outbox, [receiver])
    wait_for(lambda: len(slack.posts) == 1, 10, "len(slack.posts) == 1")

    raw = slack.posts[0][2]
    message = SlackMessage.model_validate_json(raw)
    assert "Negative sentiment on channel billing rose to 46%" in message.text
    text = json.dumps(json.loads(raw), ensure_ascii=False)
    for expected in ("46.0% of 180", "12.0% of 5210", "charged, twice, refund", "7.31"):
        assert expected in text
    assert "&lt;billing &amp; co&gt;" in text
    assert "<billing" not in text
    assert EXCERPT not in text
    assert [b.type for b in message.blocks] == ["header", "section", "context"]


def test_redirects_and_unreachable_receivers_are_failures(
    receivers: Callable[..., Recorder],
) -> None:
    moved = receivers(statuses=[302])
    assert post_json(moved.url, {"a": 1}, 2) == "HTTP 302: boom"
    assert len(moved.posts) == 1  # the redirect was not followed
    unreachable = receivers()
    url = unreachable.url
    unreachable.close()
    error = post_json(url, {"a": 1}, 2)
    assert error is not None and error.startswith("unreachable")
    assert "127.0.0.1" not in error


def test_a_hanging_receiver_is_a_failure_within_its_timeout(
    receivers: Callable[..., Recorder],
) -> None:
    slow = receivers(hang=threading.Event())
    began = time.monotonic()
    assert post_json(slow.url, {"a": 1}, 0.3) == "timed out after 0.3 s"
    assert time.monotonic() - began < 5  # bounded by the timeout, not by the receiver


def test_receivers_accept_only_http_urls() -> None:
    for bad in ("file:///etc/passwd", "ftp://example.com/x", "not a url"):
        with pytest.raises(ValidationError):
            Receiver(name="x", url=bad)
    assert "hooks.slack.com" not in repr(
        Receiver(name="s", url="https://hooks.slack.com/services/T/B/secret", format="slack")
    )


def test_a_resolved_alert_needs_an_end() -> None:
    with pytest.raises(ValidationError):
        event("firing", ends_at=START + timedelta(minutes=1))
    with pytest.raises(ValidationError):
        AlertEvent.model_validate({**event("resolved").model_dump(), "ends_at": None})
    payload = alertmanager_payload(event("resolved"), "r", "http://x")
    assert payload.alerts[0].endsAt == START + timedelta(minutes=40)


def test_store_failures_are_store_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    engine = create_engine(normalise_url(f"sqlite:///{tmp_path}/dir.db"))
    try:
        outbox = Outbox(engine)  # runs no DDL: the store is touched when used
        with pytest.raises(StoreError):
            outbox.enqueue([Message(alert_id="a", status="firing", receiver="r", payload={})])
    finally:
        engine.dispose()
