"""Kafka sinks: enriched events and dead letters, flushed by the checkpoint.

Dead letters follow the Kafka Connect convention: the value is the raw input
bytes, untouched, and the reason and source coordinates travel in headers,
so a fixed message can be replayed exactly.
"""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from pipeline.schema import DeadLetter, EnrichedEvent
from pipeline.sinks.base import Record


class EnrichedTopicSink:
    """Writes enriched events as JSON to the output topic, keyed by input id."""

    name = "enriched-topic"

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._pending: list[FutureRecordMetadata] = []

    def add(self, record: Record) -> None:
        """Send (asynchronously) if ``record`` is an enriched event."""
        if isinstance(record, EnrichedEvent):
            self._pending.append(
                self._producer.send(
                    self._topic,
                    key=record.input_id.encode("utf-8"),
                    value=record.model_dump_json().encode("utf-8"),
                )
            )

    def flush(self) -> None:
        """Wait until every send is acknowledged; raise the first failure."""
        _flush(self._producer, self._pending)


class DeadLetterTopicSink:
    """Writes dead letters: raw bytes as the value, the reason in headers."""

    name = "deadletter-topic"

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._pending: list[FutureRecordMetadata] = []

    def add(self, record: Record) -> None:
        """Send (asynchronously) if ``record`` is a dead letter."""
        if isinstance(record, DeadLetter):
            headers = [
                ("attnwatch.reason", record.reason.encode()),
                ("attnwatch.detail", record.detail.encode("utf-8", "replace")[:4096]),
                ("attnwatch.source.topic", record.source.topic.encode()),
                ("attnwatch.source.partition", str(record.source.partition).encode()),
                ("attnwatch.source.offset", str(record.source.offset).encode()),
                ("attnwatch.received_time", record.received_time.isoformat().encode()),
            ]
            self._pending.append(
                self._producer.send(self._topic, value=record.raw or b"", headers=headers)
            )

    def flush(self) -> None:
        """Wait until every send is acknowledged; raise the first failure."""
        _flush(self._producer, self._pending)


def _flush(producer: KafkaProducer, pending: list[FutureRecordMetadata]) -> None:
    producer.flush()
    try:
        for future in pending:
            future.get(timeout=30)
    finally:
        pending.clear()
