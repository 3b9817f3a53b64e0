"""The run loop: poll, decode, classify, hand results to the checkpoint, commit.

Good and bad messages are two streams (as in Bytewax): decoding yields valid
events or :class:`~pipeline.schema.DecodeError` values; the latter become
dead letters and the loop carries on.  Offsets are committed only by the
checkpoint, after every sink has flushed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consumers.source import Source, SourceRecord
from models.classifier import TextClassifier
from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from pipeline.schema import (
    DeadLetter,
    DecodeError,
    EnrichedEvent,
    InputEvent,
    Kind,
    SourceRef,
    decode,
)
from pipeline.sinks.base import Sink
from pipeline.stream.batching import MicroBatcher
from pipeline.stream.checkpoint import Checkpoint
from pipeline.stream.enrich import INTENT, SENTIMENT, classify_events, enrich

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Processing time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class RunReport:
    """Totals of one run of the loop."""

    batches: int = 0
    enriched: int = 0
    dead_letters: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class Runner:
    """Consumes a :class:`Source`, classifies, writes to sinks, commits."""

    def __init__(
        self,
        *,
        source: Source,
        classifier: TextClassifier,
        sinks: Sequence[Sink],
        topic_kinds: Mapping[str, Kind],
        metrics: Metrics,
        batch_max_size: int = 32,
        batch_max_wait_s: float = 0.2,
        lag_interval_s: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        tasks = [t.name for t in classifier.info.tasks]
        if SENTIMENT not in tasks:
            msg = f"model {classifier.info.name} has no sentiment task (tasks: {tasks})"
            raise ConfigError(msg)
        self._tasks = [t for t in (INTENT, SENTIMENT) if t in tasks]
        self._source = source
        self._classifier = classifier
        self._topic_kinds = dict(topic_kinds)
        self._metrics = metrics
        self._batcher = MicroBatcher(source, batch_max_size, batch_max_wait_s)
        self._checkpoint = Checkpoint(sinks, self._commit)
        self._lag_interval_s = lag_interval_s
        self._clock = clock
        self._last_lag = 0.0
        #: Totals of the current (or last) :meth:`run`, readable while it runs.
        self.totals = RunReport()
        info = classifier.info
        metrics.model_info.labels(info.name, info.version, info.tokenizer_hash).set(1)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        ok = self._source.commit(offsets)
        self._metrics.commits.labels("ok" if ok else "rebalanced").inc()

    def process(
        self, records: Sequence[SourceRecord], report: RunReport | None = None
    ) -> RunReport:
        """Handle one batch end to end: dead letters, classification, sinks, commit."""
        report = report if report is not None else RunReport()
        if not records:
            return report
        self._metrics.batch_size.observe(len(records))
        received = self._clock()
        valid: list[tuple[SourceRecord, InputEvent]] = []
        for record in records:
            kind = self._topic_kinds.get(record.topic)
            decoded = (
                decode(kind, record.value)
                if kind is not None
                else DecodeError("unknown_topic", f"no schema for topic {record.topic!r}")
            )
            if isinstance(decoded, DecodeError):
                self._dead_letter(record, decoded, received, report)
            else:
                valid.append((record, decoded))

        if valid:
            started = time.perf_counter()
            predictions = classify_events(self._classifier, [e for _, e in valid], self._tasks)
            model_ms = (time.perf_counter() - started) * 1000.0
            self._metrics.model_latency.observe(model_ms / 1000.0)
            processed = self._clock()
            enriched: list[EnrichedEvent] = []
            for (record, event), (prediction, evidence) in zip(valid, predictions, strict=True):
                result = enrich(
                    event,
                    record,
                    prediction,
                    self._classifier.info,
                    processed,
                    model_ms,
                    evidence,
                )
                self._checkpoint.add(result, record.topic, record.partition, record.offset)
                enriched.append(result)
        else:
            enriched = []

        self._checkpoint.commit()
        report.batches += 1
        done = self._clock()
        for out in enriched:
            self._metrics.messages.labels(out.source.topic, "enriched").inc()
            self._metrics.end_to_end_latency.observe(
                max(0.0, (done - out.event_time).total_seconds())
            )
            for task, task_result in ((INTENT, out.intent), (SENTIMENT, out.sentiment)):
                if task_result is not None:
                    self._metrics.labels.labels(out.kind, task, task_result.label).inc()
        report.enriched += len(enriched)
        log.debug("batch done", extra={"size": len(records), "enriched": len(enriched)})
        return report

    def _dead_letter(
        self, record: SourceRecord, error: DecodeError, received: datetime, report: RunReport
    ) -> None:
        letter = DeadLetter(
            source=SourceRef(topic=record.topic, partition=record.partition, offset=record.offset),
            reason=error.reason,
            detail=error.detail,
            raw=record.value,
            received_time=received,
            key=record.key,
            headers=record.headers,
            source_timestamp=(
                datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
                if record.timestamp_ms >= 0
                else None
            ),
        )
        self._checkpoint.add(letter, record.topic, record.partition, record.offset)
        self._metrics.messages.labels(record.topic, "dead_letter").inc()
        self._metrics.dead_letters.labels(error.reason).inc()
        report.dead_letters += 1
        report.by_reason[error.reason] = report.by_reason.get(error.reason, 0) + 1
        # Coordinates and reason only: raw text is never logged outside the store.
        log.warning(
            "dead letter",
            extra={
                "reason": error.reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )

    def run(
        self,
        stop: threading.Event,
        *,
        idle_exit_s: float | None = None,
        poll_timeout_s: float = 0.5,
    ) -> RunReport:
        """Loop until ``stop`` is set (or, with ``idle_exit_s``, the stream has been quiet)."""
        report = self.totals = RunReport()
        idle_since = time.monotonic()
        while not stop.is_set():
            records = self._batcher.next_batch(poll_timeout_s)
            if records:
                self.process(records, report)
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                break
            self._measure_lag()
        log.info(
            "run loop stopped",
            extra={
                "batches": report.batches,
                "enriched": report.enriched,
                "dead_letters": report.dead_letters,
            },
        )
        return report

    def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < self._lag_interval_s:
            return
        self._last_lag = now
        for (topic, partition), lag in self._source.lag().items():
            self._metrics.lag.labels(topic, str(partition)).set(lag)
