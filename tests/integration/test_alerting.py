"""Alerting end to end through the real broker: a shift fires one alert, notifies, resolves.

The run loop (real classifier, real store) consumes chats from Tansu; the evaluator that
runs beside it compares event-time windows; the notifier POSTs to an HTTP receiver that
this test starts, which answers 500 for a while.  The payload is checked against a
pydantic model of Alertmanager's webhook (version 4) written here from its documentation,
not against the project's own model.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from attnwatch.service import service
from attnwatch.settings import Settings
from consumers.broker import EmbeddedBroker
from consumers.connection import KafkaConnection
from models.classifier import AttentionTextClassifier
from models.data import seed
from pipeline.store.alerts import AlertTable
from pipeline.store.engine import create_engine, normalise_url
from pipeline.store.outbox import Outbox
from tests.integration.helpers import make_topics, read_topic, unique_settings
from tests.integration.processes import Worker, worker_env
from tests.integration.test_crash_recovery import START_S
from tests.integration.test_faults import LoopThread
from tests.support.waiting import wait_for

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Alert windows for a test of a minute or two: 2 s buckets, a 20 s current window, an
#: evaluation every half second, a baseline of 100 messages is enough.  Buckets are
#: evaluated once closed (the watermark passed them): the test sends nothing between a
#: burst and its alert, so partitions count as idle after 5 s (processing time then
#: closes the burst's last buckets), as a stream that keeps flowing would close them.
#: Not less: a partition still working through its backlog must not look idle while
#: another runs ahead, or its chats arrive late (seen at 2 s on a loaded machine: a
#: baseline of 194 where 200 were stored).
WINDOWS: dict[str, float] = {
    "alert_bucket_s": 2,
    "alert_current_s": 20,
    "alert_lateness_s": 2,
    "alert_baseline_s": 600,
    "alert_interval_s": 0.5,
    "alert_min_baseline": 100,
    "alert_idle_s": 5,
}


# Alertmanager's webhook body, from https://prometheus.io/docs/alerting/latest/configuration/
# (<webhook_config>): version "4"; extra="forbid" so a misspelt field fails.
class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: AwareDatetime
    endsAt: AwareDatetime
    generatorURL: str
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    alerts: list[WebhookAlert] = Field(min_length=1)


class Receiver:
    """An HTTP webhook receiver on loopback that fails with 500 while ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = threading.Event()
        self.delivered: list[Webhook] = []
        self.refused = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    if receiver.failing.is_set():
                        receiver.refused += 1
                        self.send_response(500)
                    else:
                        receiver.delivered.append(Webhook.model_validate_json(body))
                        self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def texts_by_label(model_dir: Path) -> tuple[list[str], list[str]]:
    """Seed chat texts the model calls negative, and ones it does not (its own judgement)."""
    classifier = AttentionTextClassifier(model_dir, "cpu")
    texts = sorted({c.text for c in seed.load_chat()})[:600]
    predictions = classifier.predict(texts, tasks=["sentiment"])
    negative = [t for t, p in zip(texts, predictions, strict=True)
                if p["sentiment"].label == "negative"]
    calm = [t for t, p in zip(texts, predictions, strict=True)
            if p["sentiment"].label != "negative"]
    assert len(negative) >= 20 and len(calm) >= 20, (len(negative), len(calm))
    return negative, calm


def produce(
    settings: Settings,
    connection: KafkaConnection,
    chats: list[tuple[str, str, datetime]],
    first: int,
) -> None:
    """Send (channel, text, event time) chats as customer turns; wait for the acks."""
    producer = KafkaProducer(**connection.client_kwargs(), acks="all", linger_ms=5)
    for i, (channel, text, when) in enumerate(chats, start=first):
        value = {
            "message_id": f"m{i}",
            "conversation_id": f"c{i}",
            "channel": channel,
            "role": "customer",
            "text": text,
            "ts": when.isoformat(),
        }
        producer.send(settings.topic_chat, key=f"c{i}".encode(), value=json.dumps(value).encode())
    producer.flush(timeout=30)
    producer.close(timeout=10)


def evaluated(store_url: str) -> datetime | None:
    """The last bucket the evaluator saved as evaluated for chats (None before the first)."""
    engine = create_engine(normalise_url(store_url))
    try:
        with engine.connect() as conn:
            if "alert_progress" not in sa.inspect(conn).get_table_names():
                return None
            row = conn.execute(
                sa.text("SELECT evaluated FROM alert_progress WHERE stream = 'chat'")
            ).first()
    finally:
        engine.dispose()
    if row is None or row[0] is None:
        return None
    return datetime.fromisoformat(str(row[0])).replace(tzinfo=UTC)


def evaluated_past(store_url: str, bucket: datetime) -> bool:
    """Whether the evaluator has evaluated the bucket starting at ``bucket`` (or later)."""
    last = evaluated(store_url)
    return last is not None and last >= bucket


def bucket_of(at: datetime) -> datetime:
    """The start of the alert bucket that holds ``at`` (``WINDOWS``' bucket size)."""
    size = WINDOWS["alert_bucket_s"]
    return datetime.fromtimestamp(at.timestamp() // size * size, UTC)


def resolved_or_evaluated(alerts: AlertTable, store_url: str, bucket: datetime) -> bool:
    return bool(alerts.rows(status="resolved")) or evaluated_past(store_url, bucket)


def calm_until_resolved(
    settings: Settings,
    connection: KafkaConnection,
    alerts: AlertTable,
    rng: random.Random,
    texts: tuple[list[str], list[str]],
    sent: int,
) -> None:
    """Calm chats on both channels, 20 per bucket, until the episode resolves (90 s bound).

    Paced by the evaluator: the next 20 go once the bucket that holds the last 20 has
    been evaluated, so each bucket the window slides over holds calm traffic.
    """
    deadline = time.monotonic() + 90
    while not alerts.rows(status="resolved"):
        assert time.monotonic() < deadline, "the episode did not resolve within 90 s"
        now = datetime.now(UTC)
        produce(settings, connection, mixed(rng, 20, now, 1, 0.2, *texts, ("app", "web")), sent)
        sent += 20
        bucket = bucket_of(now)
        wait_for(
            partial(resolved_or_evaluated, alerts, settings.store_url, bucket),
            30,
            "the calm bucket evaluated",
        )


def mixed(rng: random.Random, n: int, start: datetime, span_s: float, share: float,
          negative: list[str], calm: list[str], channels: tuple[str, ...]):
    return [
        (rng.choice(channels), rng.choice(negative if rng.random() < share else calm),
         start + timedelta(seconds=span_s * i / n))
        for i in range(n)
    ]


def test_a_shift_fires_one_alert_notifies_through_500s_and_resolves(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, receiver: Receiver
) -> None:
    connection = broker.connection
    store_url = f"sqlite:///{tmp_path / 'alerts.db'}"
    settings = unique_settings(
        store_url,
        tiny_model,
        **WINDOWS,
        alert_retry_max_s=1.0,
        alert_receivers=json.dumps([{"name": "oncall", "url": receiver.url}]),
    )
    make_topics(settings, connection)
    negative, calm = texts_by_label(tiny_model)
    rng = random.Random(7)
    # Two calm minutes behind us on two channels (20% negative), then a burst of angry
    # chats on "app", stamped as they are sent.
    start = datetime.now(UTC) - timedelta(seconds=140)
    baseline = mixed(rng, 480, start, 118, 0.2, negative, calm, ("app", "web"))
    receiver.failing.set()
    alerts = AlertTable(create_engine(normalise_url(store_url)))
    with service(settings, connection) as svc:
        loop = LoopThread(svc)
        produce(settings, connection, baseline, 0)
        wait_for(lambda: loop.handled() >= 480, 90, "the baseline stored")
        assert alerts.rows() == []
        burst = mixed(rng, 120, datetime.now(UTC) - timedelta(seconds=3), 3, 0.9, negative,
                      calm, ("app",))
        produce(settings, connection, burst, 480)
        wait_for(lambda: loop.handled() >= 600, 60, "the burst stored")
        wait_for(lambda: alerts.rows(status="firing") != [], 30, "an alert fired")

        # The receiver refuses; the stream goes on regardless: more chats are stored
        # while the notification waits in the outbox.
        wait_for(lambda: receiver.refused >= 2, 30, "the receiver was tried")
        later = mixed(rng, 60, datetime.now(UTC), 1, 0.2, negative, calm, ("web",))
        produce(settings, connection, later, 600)
        wait_for(lambda: loop.handled() >= 660, 30, "chats stored while the receiver fails")
        assert receiver.delivered == []

        receiver.failing.clear()
        wait_for(lambda: len(receiver.delivered) >= 1, 30, "the alert delivered after the 500s")

        calm_until_resolved(settings, connection, alerts, rng, (negative, calm), 660)
        wait_for(lambda: len(receiver.delivered) >= 2, 30, "the resolve delivered")
        # Nothing more may come: a bucket after the resolve is evaluated, and nothing it
        # queued is left undelivered in the outbox.
        resolved = bucket_of(datetime.now(UTC))
        outbox = Outbox(create_engine(normalise_url(store_url)))
        wait_for(
            lambda: evaluated_past(store_url, resolved)
            and not outbox.rows(undelivered_only=True),
            30,
            "a bucket after the resolve evaluated, the outbox empty",
        )
        loop.finish()

    rows = alerts.rows(limit=100)
    assert len(rows) == 1, [r["alert_id"] for r in rows]
    row = rows[0]
    assert (row["status"], row["scope_kind"], row["scope"]) == ("resolved", "channel", "app")

    # The alerts topic: one firing event with evidence, then its resolve.
    records = read_topic(connection, settings.topic_alerts, 2)
    events = [json.loads(r.value) for r in records]
    assert [e["status"] for e in events] == ["firing", "resolved"]
    assert {e["alert_id"] for e in events} == {row["alert_id"]}
    fired = events[0]
    assert fired["current_share"] > fired["baseline_share"] + 0.3
    assert fired["statistic"] >= settings.alert_z_open
    assert len(fired["evidence"]) >= 3 and all(e["top_words"] for e in fired["evidence"])
    assert all(any(t.startswith(e["text_excerpt"]) for t in negative) for e in fired["evidence"]), [
        e["text_excerpt"] for e in fired["evidence"]]
    assert ("overall", "") in {(r["scope_kind"], r["scope"]) for r in fired["related"]}
    assert events[1]["ends_at"] is not None

    # The receiver: exactly one firing and one resolved notification, in Alertmanager shape.
    assert [w.status for w in receiver.delivered] == ["firing", "resolved"]
    first, last = receiver.delivered
    assert first.receiver == "oncall" and first.groupKey == last.groupKey
    assert first.alerts[0].labels["scope"] == "app"
    assert first.alerts[0].labels["alert_id"] == row["alert_id"]
    assert first.alerts[0].fingerprint == last.alerts[0].fingerprint
    assert first.alerts[0].endsAt.year == 1  # Alertmanager's zero time while firing
    assert last.alerts[0].endsAt > last.alerts[0].startsAt
    assert "evidence_words" in first.commonAnnotations


def test_a_restart_during_an_episode_neither_fires_it_again_nor_forgets_the_baseline(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path
) -> None:
    """``attnwatch run`` as a real process, stopped mid-episode and started again."""
    connection = broker.connection
    settings = unique_settings(
        f"sqlite:///{tmp_path / 'restart.db'}",
        tiny_model,
        bootstrap_servers=broker.bootstrap_servers,
        batch_max_wait_ms=50,
        **WINDOWS,
    )
    make_topics(settings, connection)
    negative, calm = texts_by_label(tiny_model)
    rng = random.Random(11)
    alerts = AlertTable(create_engine(normalise_url(settings.store_url)))
    env = worker_env(settings)
    start = datetime.now(UTC) - timedelta(seconds=140)
    produce(settings, connection,
            mixed(rng, 480, start, 118, 0.2, negative, calm, ("app", "web")), 0)

    with Worker(["attnwatch", "run"], env, tmp_path / "logs") as first:
        first.wait_for_log("alert evaluator leading", START_S)
        burst = mixed(rng, 120, datetime.now(UTC) - timedelta(seconds=3), 3, 0.9, negative,
                      calm, ("app",))
        produce(settings, connection, burst, 480)
        wait_for(lambda: alerts.rows(status="firing") != [], 60, "an alert fired")
        fired = alerts.rows(status="firing")
        first.signal(signal.SIGTERM)
        assert first.wait(settings.shutdown_timeout_s + 10) == 0, first.tail()

    with Worker(["attnwatch", "run"], env, tmp_path / "logs") as second:
        leading = second.wait_for_log("alert evaluator leading", START_S)
        assert leading["resumed_alerts"] == [fired[0]["alert_id"]]
        # Two more closed buckets evaluated over the same, still shifted, window.
        resumed = evaluated(settings.store_url)
        assert resumed is not None
        later = resumed + timedelta(seconds=2 * WINDOWS["alert_bucket_s"])
        second.until(
            lambda: evaluated_past(settings.store_url, later), 30, "two more buckets evaluated"
        )
        assert [r["alert_id"] for r in alerts.rows()] == [fired[0]["alert_id"]]
        calm_until_resolved(settings, connection, alerts, rng, (negative, calm), 600)
        second.signal(signal.SIGTERM)
        assert second.wait(settings.shutdown_timeout_s + 10) == 0, second.tail()

    rows = alerts.rows()
    assert [(r["alert_id"], r["status"]) for r in rows] == [(fired[0]["alert_id"], "resolved")]
    events = [json.loads(r.value) for r in read_topic(connection, settings.topic_alerts, 2)]
    assert [e["status"] for e in events] == ["firing", "resolved"]
    # The resolve compared against a baseline that still holds the chats from before the
    # restart: the store is the baseline, not the process's memory.
    assert events[1]["baseline_n"] >= events[0]["baseline_n"] >= 200
