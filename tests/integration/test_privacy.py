"""The PII corpus through broker, run loop, store, topics, alerts and logs: nothing leaks.

Every corpus string goes in as a customer chat, some as news headlines, and some inside
malformed events (dead letters).  Afterwards the SQLite files (database and WAL, as bytes),
every record of the ``enriched`` and ``deadletter`` topics, the evidence an alert would
carry and every log record are searched for each original identifier: none may be there.
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from attnwatch.service import service
from consumers.broker import EmbeddedBroker
from models.words import split_words
from pipeline.alerting.evaluator import Evaluator
from pipeline.metrics import Metrics
from pipeline.store import open_store, read_dead_letters, read_events
from tests.integration.helpers import handled, make_topics, read_topic, run_until, unique_settings
from tests.unit.pipeline.privacy.corpus import corpus

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def needles(identifier: str) -> set[str]:
    """The identifier as written, and compact (no spaces, dashes, dots or brackets)."""
    compact = re.sub(r"[\s\-.()]", "", identifier)
    return {identifier, compact} if len(compact) >= 6 else {identifier}


def test_no_identifier_of_the_corpus_survives_anywhere(
    broker: EmbeddedBroker, tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The "limit" samples are the redactor's documented misses (a name without a cue, a
    # lowercase address); bench/pii_redaction.py counts them against its recall.
    samples = [s for s in corpus() if s.expected and s.group != "limit"]
    assert len(samples) >= 200
    db = tmp_path / "privacy.db"
    settings = unique_settings(f"sqlite:///{db}", tiny_model)
    connection = broker.connection
    make_topics(settings, connection)
    now = datetime.now(UTC) - timedelta(seconds=5)
    producer = KafkaProducer(**connection.client_kwargs(), acks="all", linger_ms=5)
    bad = 0
    for i, sample in enumerate(samples):
        if i % 5 == 4:
            topic = settings.topic_news
            value: dict[str, object] = {
                "article_id": f"a{i}",
                "source": "wire",
                "headline": sample.text,
                "ts": now.isoformat(),
            }
        else:
            topic = settings.topic_chat
            value = {
                "message_id": f"m{i}",
                "conversation_id": f"c{i}",
                "channel": "app",
                "role": "customer",
                "text": sample.text,
                "ts": now.isoformat(),
            }
        if i % 7 == 6:
            del value["ts"]  # a schema violation: the raw value is a dead letter
            bad += 1
        producer.send(topic, key=f"k{i}".encode(), value=json.dumps(value).encode())
    producer.flush(timeout=30)
    producer.close(timeout=10)

    # Everything attnwatch logs, at DEBUG; kafka-python at INFO (attnwatch keeps it at
    # WARNING: at DEBUG it logs every record it sends, which is its own business).
    caplog.set_level(logging.INFO)
    for name in ("pipeline", "consumers", "models"):
        caplog.set_level(logging.DEBUG, logger=name)
    with service(settings, connection) as svc:
        report = run_until(svc.runner, handled(svc.runner, len(samples)), timeout_s=180)
    # The run's own log records (the test's topic reads below log at DEBUG too).
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert (report.enriched, report.dead_letters) == (len(samples) - bad, bad)

    identifiers = {needle for s in samples for _, found in s.expected for needle in needles(found)}
    # 1. The store, byte for byte (the database and its write-ahead log).
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("privacy.db*"))
    # 2. The topics: values, keys and headers.
    topics = b""
    for topic, n in (
        (settings.topic_enriched, report.enriched),
        (settings.topic_deadletter, report.dead_letters),
    ):
        for record in read_topic(connection, topic, n):
            topics += (record.value or b"") + (record.key or b"")
            topics += b"".join(v for _, v in record.headers or [])
    # 3. What an alert on the chat stream would carry as evidence.
    with open_store(settings.store_url) as store:
        evaluator = Evaluator(store.engine, Metrics(), owner="t")
        evidence, rising = evaluator._evidence(("chat", "overall", ""), datetime.now(UTC), now)
    alert_text = json.dumps([e.model_dump() for e in evidence] + [r.model_dump() for r in rising])
    assert evidence, "no evidence read back"
    # 4. Every log record of the run, at DEBUG (above).

    # Attention weights and scores are long decimals ("0.08559308..."): a 6-digit sort code
    # would be found in them by chance, so they are taken out before searching.
    def searchable(blob: bytes) -> bytes:
        return re.sub(rb"\d*\.\d{6,}(?:[eE]-?\d+)?", b" ", blob)

    leaks = {
        where: sorted(i for i in identifiers if i.encode() in searchable(blob))
        for where, blob in (
            ("store", stored),
            ("topics", topics),
            ("alerts", alert_text.encode()),
            ("logs", logs.encode()),
        )
    }
    assert leaks == {"store": [], "topics": [], "alerts": [], "logs": []}

    # The placeholders are there, and attention is over the redacted words and sums to 1.
    events = read_events(settings.store_url)
    assert events["text"].str.contains(r"\[CARD\]|\[IBAN\]|\[EMAIL\]|\[PHONE\]").sum() > 50
    for text, attention in zip(events["text"], events["sentiment_attention"], strict=True):
        tokens = iter(split_words(text))
        # Every attention word is a display word of the redacted text, in order and at its
        # offsets (a truncated tail may be missing); a placeholder is one word.
        assert all(any(t == w["word"] for t in tokens) for w in attention), text
        assert all(text[w["start"] : w["end"]] == w["word"] for w in attention), text
        assert math.isclose(sum(w["weight"] for w in attention), 1.0, rel_tol=1e-4)
    letters = read_dead_letters(settings.store_url)
    assert len(letters) == bad and all(b"[" in (raw or b"[") for raw in letters["raw"])
