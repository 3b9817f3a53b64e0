"""The run loop end to end through a real Tansu broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from attnwatch.service import service
from pipeline.store import open_store, read_dead_letters, read_events
from tests.integration.helpers import (
    committed_offsets,
    handled,
    make_topics,
    produce_mixed,
    quiet_after_assignment,
    read_topic,
    run_until,
    unique_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'attnwatch.db'}"
    url = request.getfixturevalue("postgres_url")
    from pipeline.store.tables import metadata

    with open_store(url) as store:  # a clean schema for this test
        metadata.drop_all(store.engine)
    return url


#: How long a restarted run must stay quiet once every partition has been fetched from.
#: By then anything past the committed offsets is already in the consumer's hands; the
#: loop needs one poll (0.5 s), one batch wait (0.1 s) and a tiny-model batch to show it.
RESTART_QUIET_S = 2.0


def run_until_handled(settings, connection, expected: int):
    """One run of the loop that stops as soon as ``expected`` records are handled."""
    with service(settings, connection) as svc:
        return run_until(svc.runner, handled(svc.runner, expected))


def run_after_restart(settings, connection):
    """One run of the loop that stops once it has been quiet for ``RESTART_QUIET_S``."""
    partitions = [
        (topic, p)
        for topic in (settings.topic_chat, settings.topic_news)
        for p in range(settings.partitions)
    ]
    with service(settings, connection) as svc:
        quiet = quiet_after_assignment(svc.metrics, partitions, RESTART_QUIET_S)
        return run_until(svc.runner, quiet)


def test_500_mixed_events_end_to_end(broker, tiny_model, store_url):
    connection = broker.connection
    settings = unique_settings(store_url, tiny_model)
    make_topics(settings, connection)
    started = datetime.now(UTC)
    sent = produce_mixed(settings, connection, n_valid=480, n_bad=20)

    report = run_until_handled(settings, connection, 500)
    finished = datetime.now(UTC)
    wall_ms = (finished - started) / timedelta(milliseconds=1)
    assert (report.enriched, report.dead_letters) == (480, 20)

    # The store has exactly the valid events, keyed by input id, each explained.
    events = read_events(store_url)
    assert len(events) == 480
    assert set(events["input_id"]) == sent["input_ids"]
    assert events["text"].str.contains("\n").sum() > 5  # some news came with a body
    for _, row in events.iterrows():
        weights = [w["weight"] for w in row["sentiment_attention"]]
        assert sum(weights) == pytest.approx(1.0, abs=1e-4)
        assert all(w["word"] in row["text"] for w in row["sentiment_attention"])
        if row["kind"] == "chat" and row["role"] == "customer":
            assert sum(w["weight"] for w in row["intent_attention"]) == pytest.approx(1, abs=1e-4)
            assert len(row["intent_top"]) == 3
        else:
            assert pd.isna(row["intent_label"])
        assert row["model_name"] == "tiny-test"
        if row["kind"] == "news" and "\n" in row["text"]:  # long news: sentence evidence
            assert row["sentiment_evidence"] and row["sentiment_evidence"] in row["text"]
        else:
            assert pd.isna(row["sentiment_evidence"])
        # Event time is the producer's (5 s in the past), processing time the loop's clock.
        assert row["event_time"] == sent["event_time"]
        assert started <= row["processed_time"] <= finished
        latency = (row["processed_time"] - row["event_time"]) / timedelta(milliseconds=1)
        assert row["end_to_end_latency_ms"] == pytest.approx(latency, abs=0.01)
        assert 5000 <= row["end_to_end_latency_ms"] <= 5000 + wall_ms

    # Dead letters: in the store and on the topic, raw bytes untouched, reason in headers.
    letters = read_dead_letters(store_url)
    assert len(letters) == 20
    assert letters["reason"].notna().all() and (letters["detail"].str.len() > 0).all()
    dead = read_topic(connection, settings.topic_deadletter, 20)
    assert len(dead) == 20
    for record in dead:
        headers = dict(record.headers)
        source = (
            headers["attnwatch.source.topic"].decode(),
            int(headers["attnwatch.source.partition"]),
            int(headers["attnwatch.source.offset"]),
        )
        assert sent["bad"][source] == record.value
        assert headers["attnwatch.reason"].decode() in {
            "invalid_utf8",
            "invalid_json",
            "not_an_object",
            "unsupported_schema_version",
            "schema_violation",
        }

    # The enriched topic carries every valid event, keyed by input id.
    enriched = read_topic(connection, settings.topic_enriched, 480)
    assert len(enriched) == 480
    assert {r.key.decode() for r in enriched} == sent["input_ids"]
    sample = json.loads(enriched[0].value)
    assert sample["schema_version"] == 1 and sample["sentiment"]["attention"]

    # Offsets are committed at the end of every partition.
    committed = committed_offsets(connection, settings.group_id, sent["last_offsets"])
    assert committed == {tp: offset + 1 for tp, offset in sent["last_offsets"].items()}

    # A restart of the run loop processes nothing twice.
    again = run_after_restart(settings, connection)
    assert (again.enriched, again.dead_letters) == (0, 0)
    with open_store(store_url) as store:
        assert store.count() == 480
    assert len(read_dead_letters(store_url)) == 20


def test_lag_comes_from_fetch_high_watermarks(broker, tmp_path):
    from kafka import KafkaProducer

    from consumers.source import KafkaSource

    connection = broker.connection
    settings = unique_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, partitions=1)
    make_topics(settings, connection)
    producer = KafkaProducer(**connection.client_kwargs())
    for i in range(12):  # one record per batch: Tansu reports those ends exactly
        producer.send(settings.topic_chat, value=b"%d" % i).get(timeout=30)
    producer.close()
    source = KafkaSource(connection, [settings.topic_chat], settings.group_id)
    try:
        records = []
        for _ in range(40):
            records += source.poll(0.5, max_records=3)
            if records:
                break
        assert records
        lag = source.lag()
        assert lag[(settings.topic_chat, 0)] == 12 - len(records)
    finally:
        source.close()
