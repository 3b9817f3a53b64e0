"""The Kafka topic sinks against a fake producer: what is sent, and flushes that can be retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

from pipeline.schema import DeadLetter, SourceRef
from pipeline.sinks.topics import DeadLetterTopicSink, EnrichedTopicSink
from tests.support.producers import FakeProducer
from tests.unit.pipeline.test_store import make_event

#: A Kafka timestamp with milliseconds, as the run loop turns it into a datetime.
SOURCE_MS = 1_740_830_400_123
SOURCE_TIME = datetime.fromtimestamp(SOURCE_MS / 1000, UTC)
RECEIVED = datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)


def letter(
    offset: int = 7,
    raw: bytes | None = b'{"text": ',
    key: bytes | None = b"conv-1",
    headers: tuple[tuple[str, bytes], ...] = (("trace-id", b"\x00\xffabc"), ("tenant", b"acme")),
    source_timestamp: datetime | None = SOURCE_TIME,
) -> DeadLetter:
    return DeadLetter(
        source=SourceRef(topic="chat", partition=2, offset=offset),
        reason="invalid_json",
        detail="EOF while parsing a value at line 1 column 9",
        raw=raw,
        received_time=RECEIVED,
        key=key,
        headers=headers,
        source_timestamp=source_timestamp,
    )


def test_dead_letter_keeps_the_original_record_and_adds_attnwatch_headers() -> None:
    producer = FakeProducer()
    sink = DeadLetterTopicSink(producer, "deadletter")  # type: ignore[arg-type]
    sink.add(letter())
    sink.add(make_event(1))  # not a dead letter: ignored
    assert len(producer.sends) == 1
    sent = producer.sends[0]
    assert (sent["topic"], sent["value"], sent["key"]) == ("deadletter", b'{"text": ', b"conv-1")
    assert sent["timestamp_ms"] == SOURCE_MS
    assert sent["headers"] == [
        ("trace-id", b"\x00\xffabc"),
        ("tenant", b"acme"),
        ("attnwatch.reason", b"invalid_json"),
        ("attnwatch.detail", b"EOF while parsing a value at line 1 column 9"),
        ("attnwatch.source.topic", b"chat"),
        ("attnwatch.source.partition", b"2"),
        ("attnwatch.source.offset", b"7"),
        ("attnwatch.received_time", b"2025-03-01T12:00:05+00:00"),
        ("attnwatch.value_null", b"false"),
        ("attnwatch.source.timestamp", b"2025-03-01T12:00:00.123000+00:00"),
    ]


def test_null_and_empty_values_stay_apart() -> None:
    producer = FakeProducer()
    sink = DeadLetterTopicSink(producer, "deadletter")  # type: ignore[arg-type]
    sink.add(letter(1, raw=None))
    sink.add(letter(2, raw=b""))
    sink.add(letter(3, raw=None, key=None, headers=(), source_timestamp=None))
    null, empty, keyless = producer.sends
    assert (null["value"], dict(null["headers"])["attnwatch.value_null"]) == (None, b"true")
    assert (empty["value"], dict(empty["headers"])["attnwatch.value_null"]) == (b"", b"false")
    # kafka-python refuses a record with neither key nor value: the header tells.
    assert (keyless["value"], keyless["key"]) == (b"", None)
    assert dict(keyless["headers"])["attnwatch.value_null"] == b"true"
    # No source timestamp: the broker stamps it, and no header claims one.
    assert keyless["timestamp_ms"] is None
    assert "attnwatch.source.timestamp" not in dict(keyless["headers"])


def test_source_timestamp_in_another_zone_is_sent_as_the_same_instant() -> None:
    producer = FakeProducer()
    sink = DeadLetterTopicSink(producer, "deadletter")  # type: ignore[arg-type]
    plus2 = SOURCE_TIME.astimezone(timezone(timedelta(hours=2)))
    sink.add(letter(source_timestamp=plus2))
    sent = producer.sends[0]
    assert sent["timestamp_ms"] == SOURCE_MS
    assert dict(sent["headers"])["attnwatch.source.timestamp"].endswith(b"+00:00")


def test_long_detail_is_cut_to_4_kib() -> None:
    producer = FakeProducer()
    sink = DeadLetterTopicSink(producer, "deadletter")  # type: ignore[arg-type]
    long = letter().model_copy(update={"detail": "é" * 5000})
    sink.add(long)
    assert len(dict(producer.sends[0]["headers"])["attnwatch.detail"]) == 4096


def test_enriched_event_is_keyed_by_input_id() -> None:
    producer = FakeProducer()
    sink = EnrichedTopicSink(producer, "enriched")  # type: ignore[arg-type]
    event = make_event(3)
    sink.add(event)
    sink.add(letter())  # not an enriched event: ignored
    sink.flush()
    (sent,) = producer.sends
    assert (sent["topic"], sent["key"]) == ("enriched", b"chat:m3")
    assert sent["value"] == event.model_dump_json().encode()


def _sink(kind: str, producer: FakeProducer, timeout_s: float = 30.0) -> Any:
    if kind == "enriched":
        return EnrichedTopicSink(producer, "enriched", timeout_s)  # type: ignore[arg-type]
    return DeadLetterTopicSink(producer, "deadletter", timeout_s)  # type: ignore[arg-type]


def _record(kind: str, n: int) -> Any:
    return make_event(n) if kind == "enriched" else letter(n, raw=f"bad {n}".encode())


@pytest.mark.parametrize("kind", ["enriched", "deadletter"])
def test_a_failed_flush_is_retried_until_every_record_is_acknowledged(kind: str) -> None:
    producer = FakeProducer(fail_first=1)
    sink = _sink(kind, producer)
    sink.add(_record(kind, 1))
    sink.add(_record(kind, 2))
    with pytest.raises(NotLeaderForPartitionError):
        sink.flush()
    assert sink.pending == 2
    # Added after the failed flush; its first send fails too.
    sink.add(_record(kind, 3))
    with pytest.raises(NotLeaderForPartitionError):
        sink.flush()
    assert sink.pending == 3
    sink.flush()
    assert sink.pending == 0
    values = [s["value"] for s in producer.sends]
    first, second, third = dict.fromkeys(values)
    # Every record was re-sent until acknowledged, and no acknowledged one was sent again.
    assert values == [first, second, third, first, second, third]
    # A successful flush clears the buffer: the next one sends nothing.
    sent = len(producer.sends)
    sink.flush()
    assert len(producer.sends) == sent


@pytest.mark.parametrize("kind", ["enriched", "deadletter"])
def test_only_failed_sends_are_repeated(kind: str) -> None:
    producer = FakeProducer()
    sink = _sink(kind, producer)
    sink.add(_record(kind, 1))
    sink.add(_record(kind, 2))
    producer.futures[1].error = NotLeaderForPartitionError("lost")
    with pytest.raises(NotLeaderForPartitionError):
        sink.flush()
    sink.flush()
    assert [s["value"] for s in producer.sends][2:] == [producer.sends[1]["value"]]


@pytest.mark.parametrize("kind", ["enriched", "deadletter"])
def test_a_timed_out_flush_raises_and_waits_again_without_duplicating(kind: str) -> None:
    producer = FakeProducer(in_flight=True, flush_error=KafkaTimeoutError("flush timed out"))
    sink = _sink(kind, producer, timeout_s=2.5)
    sink.add(_record(kind, 1))
    with pytest.raises(KafkaTimeoutError):
        sink.flush()
    assert producer.flush_timeouts == [2.5]
    assert sink.pending == 1
    # The producer delivers the record in its own time; the retry then just sees the ack.
    producer.flush_error = None
    producer.futures[0].is_done = True
    sink.flush()
    assert len(producer.sends) == 1
    assert producer.futures[0].waited == [2.5]
    assert sink.pending == 0


@pytest.mark.parametrize("kind", ["enriched", "deadletter"])
def test_an_ack_that_never_comes_raises_after_the_timeout(kind: str) -> None:
    producer = FakeProducer(in_flight=True)
    sink = _sink(kind, producer, timeout_s=0.5)
    sink.add(_record(kind, 1))
    with pytest.raises(KafkaTimeoutError):
        sink.flush()
    assert producer.futures[0].waited == [0.5]
    assert sink.pending == 1


@pytest.mark.parametrize("kind", ["enriched", "deadletter"])
def test_send_failing_in_add_is_retried_by_flush(kind: str) -> None:
    producer = FakeProducer(send_error=KafkaTimeoutError("no metadata"))
    sink = _sink(kind, producer)
    sink.add(_record(kind, 1))  # does not raise: the flush will
    sink.add(_record(kind, 2))
    with pytest.raises(KafkaTimeoutError):
        sink.flush()
    assert sink.pending == 2
    producer.send_error = None
    sink.flush()
    assert len(producer.sends) == 2
    assert sink.pending == 0


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        DeadLetterTopicSink(FakeProducer(), "deadletter", timeout_s=0)  # type: ignore[arg-type]
