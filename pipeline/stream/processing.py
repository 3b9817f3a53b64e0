"""One micro-batch from raw records to durably written results: the classify thread's job.

Every input ends enriched or dead-lettered, never as an exception out of here:

- bad bytes are dead letters with the decoder's reason (good and bad as two streams);
- a record the store remembers as started before without finishing (the process died
  while it was in flight) is retried alone, so that only a record that really kills the
  process accumulates starts; at ``max_redeliveries`` it is dead-lettered as
  ``redelivery_limit`` (counts in :mod:`pipeline.store.attempts`);
- an exception from the model is isolated by bisection: the batch is split until the
  failing records are alone, they are dead-lettered as ``model_error`` with the exception
  type, and the rest of the batch is processed;
- sinks that fail (store or broker away) are retried with capped backoff, so a transient
  fault delays the batch instead of killing the process.

Results go to the checkpoint, which this thread flushes; committing offsets is the polling
thread's job (:meth:`Checkpoint.commit <pipeline.stream.checkpoint.Checkpoint.commit>`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka.errors import KafkaError

from consumers.source import Offsets, SourceRecord, advance
from models.classifier import Prediction, TextClassifier
from models.long_text import Evidence
from pipeline.config import StreamSettings
from pipeline.errors import StoreError
from pipeline.metrics import Metrics
from pipeline.privacy import PrivacyPolicy
from pipeline.schema import (
    DeadLetter,
    DecodeError,
    EnrichedEvent,
    InputEvent,
    Kind,
    SourceRef,
    decode,
)
from pipeline.schema import Limits as InputLimits
from pipeline.store.attempts import AttemptLog, Position
from pipeline.store.dedup import StoredLookup
from pipeline.store.raw import RawDeadLetter, RawEvent
from pipeline.stream import prediction_cache
from pipeline.stream.checkpoint import Checkpoint, UnflushedError
from pipeline.stream.enrich import INTENT, SENTIMENT, classify_events, enrich
from pipeline.stream.retry import Backoff, retry
from pipeline.stream.sizing import fit_to_size

log = logging.getLogger(__name__)

#: Faults worth waiting out: the store or the broker unavailable or slow.
TRANSIENT: tuple[type[BaseException], ...] = (
    StoreError, KafkaError, TimeoutError, OSError, UnflushedError
)
Classified = tuple[Prediction, dict[str, Evidence]]


@dataclass
class RunReport:
    """Totals of one run of the loop."""

    batches: int = 0
    enriched: int = 0
    dead_letters: int = 0
    #: Records of a redelivered batch found already stored (not produced again).
    skipped: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class Limits:
    """How much work one batch may do, and how often a record may be started."""

    max_redeliveries: int = 3
    max_sentences: int = 64
    #: Texts per classifier call: long news is split into sentences, and 32 articles of 64
    #: sentences must not become one unbounded call (the classifier cuts each call into
    #: forward passes of at most 64 texts by length; one call per micro-batch lets it
    #: choose those cuts over all the batch's units).
    max_texts_per_forward: int = 512
    #: Largest enriched record (attention is trimmed to fit, else ``too_large``).
    max_message_bytes: int = 1_000_000
    #: What the decoder accepts (sizes, characters, times).
    input: InputLimits = field(default_factory=InputLimits)

    @classmethod
    def from_settings(cls, stream: StreamSettings) -> Limits:
        """The limits configured in the stream settings group."""
        return cls(
            max_redeliveries=stream.max_redeliveries,
            max_sentences=stream.max_sentences,
            max_message_bytes=stream.max_message_bytes,
            input=InputLimits.from_settings(stream),
        )


@dataclass(frozen=True)
class BatchCollaborators:
    """The processor's optional collaborators (each ``None``: that duty is not done)."""

    #: Counts how often a record was started (redelivery limit); ``None``: no limit.
    attempts: AttemptLog | None = None
    #: Finds what a redelivered batch already stored (skipped, not produced again).
    lookup: StoredLookup | None = None
    #: Redaction before anything is classified, stored or produced (``None``: the default).
    privacy: PrivacyPolicy | None = None
    #: Processing time.
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class BatchProcessor:
    """Decodes, classifies, enriches and flushes one batch into the checkpoint."""

    def __init__(
        self,
        *,
        classifier: TextClassifier,
        checkpoint: Checkpoint,
        topic_kinds: Mapping[str, Kind],
        metrics: Metrics,
        tasks: Sequence[str],
        limits: Limits | None = None,
        backoff: Backoff | None = None,
        on_sink_state: Callable[[str, bool, str], None] | None = None,
        collaborators: BatchCollaborators | None = None,
    ) -> None:
        parts = collaborators if collaborators is not None else BatchCollaborators()
        self._privacy = parts.privacy if parts.privacy is not None else PrivacyPolicy()
        self._raw: dict[str, InputEvent] = {}
        self._classifier = classifier
        self._checkpoint = checkpoint
        self._topic_kinds = dict(topic_kinds)
        self._metrics = metrics
        self._tasks = list(tasks)
        self._attempts = parts.attempts
        self._lookup = parts.lookup
        self._limits = limits or Limits()
        self._backoff = backoff or Backoff()
        self._clock = parts.clock
        self._on_sink_state = on_sink_state

    @property
    def classifier(self) -> TextClassifier:
        """The model that classifies the next batch."""
        return self._classifier

    def use(self, classifier: TextClassifier) -> None:
        """Classify later batches with ``classifier`` (the runner calls it between batches)."""
        # Issue 27: a prediction cache in front of the old model stays, emptied, around the new.
        self._classifier = prediction_cache.swap(self._classifier, classifier)

    def process(
        self, records: Sequence[SourceRecord], report: RunReport, abort: threading.Event
    ) -> Offsets:
        """Handle ``records`` end to end; the offsets now durable (the checkpoint commits them).

        Raises ``Abandoned`` only if ``abort`` is set.
        """
        self._metrics.batch_size.observe(len(records))
        received = self._clock()
        valid: list[tuple[SourceRecord, InputEvent]] = []
        bad: list[tuple[SourceRecord, DecodeError]] = []
        for record in records:
            kind = self._topic_kinds.get(record.topic)
            decoded = (
                decode(kind, record.value, self._limits.input)
                if kind is not None
                else DecodeError("unknown_topic", f"no schema for topic {record.topic!r}")
            )
            if isinstance(decoded, DecodeError):
                bad.append((record, decoded))
            else:
                valid.append((record, self._redact(decoded)))
        valid, bad = self._skip_stored(valid, bad, report, abort)
        for record, error in bad:
            self._dead_letter(record, error, received, report)

        earlier = self._begin([_position(r) for r, _ in valid], abort)
        fresh = [(r, e) for r, e in valid if _position(r) not in earlier]
        written = self._classify_and_add(fresh, report)
        durable = self._flush(abort, [_position(r) for r, _ in fresh], written, report)
        for record, event in valid:
            starts = earlier.get(_position(record))
            if starts is None:
                continue
            if starts >= self._limits.max_redeliveries:
                detail = f"started {starts} times without finishing (the process died each time)"
                self._dead_letter(record, DecodeError("redelivery_limit", detail), received, report)
                advance(durable, self._flush(abort, [_position(record)], [], report))
                continue
            # Alone, so that if it kills the process again, only its own count grows.
            self._start_one(_position(record), abort)
            written = self._classify_and_add([(record, event)], report)
            advance(durable, self._flush(abort, [_position(record)], written, report))
        self._raw.clear()
        report.batches += 1
        return durable

    def _redact(self, event: InputEvent) -> InputEvent:
        """What the classifier reads: the redacted event unless configured otherwise.

        The raw event stays in memory for this batch only (for ``classify_redacted=False``
        and the opt-in raw store, which takes it from the checkpoint as a
        :class:`~pipeline.store.raw.RawEvent`); nothing downstream of this point sees raw
        text unless :meth:`PrivacyPolicy.redact_output` has rewritten it.
        """
        redacted, counts = self._privacy.redact_event(event)
        for kind, n in counts.items():
            self._metrics.redactions.labels(kind).inc(n)
        if counts:
            self._raw[event.input_id] = event
        return redacted if self._privacy.classify_redacted else event

    def _skip_stored(
        self,
        valid: list[tuple[SourceRecord, InputEvent]],
        bad: list[tuple[SourceRecord, DecodeError]],
        report: RunReport,
        abort: threading.Event,
    ) -> tuple[list[tuple[SourceRecord, InputEvent]], list[tuple[SourceRecord, DecodeError]]]:
        """Drop what a redelivered batch already wrote (stored implies produced)."""
        lookup = self._lookup
        if lookup is None or not (valid or bad):
            return valid, bad
        ids, positions = retry(
            lambda: lookup.stored([e.input_id for _, e in valid], [_position(r) for r, _ in bad]),
            what="dedup lookup", retriable=TRANSIENT, stop=abort, backoff=self._backoff,
            on_failure=self._sink_failed,
        )
        if not ids and not positions:
            return valid, bad
        stored_valid = [r for r, e in valid if e.input_id in ids]
        stored_bad = [r for r, _ in bad if _position(r) in positions]
        for record in [*stored_valid, *stored_bad]:
            self._checkpoint.mark(record.topic, record.partition, record.offset)
        skipped = len(stored_valid) + len(stored_bad)
        report.skipped += skipped
        if self._attempts is not None:
            # A crash between the store commit and forgetting the counts left them behind.
            try:
                self._attempts.finish([_position(r) for r in stored_valid])
            except StoreError as exc:
                log.warning("could not clear attempt counts", extra={"error": str(exc)[:300]})
        log.info("skipped records already stored", extra={"n": skipped})
        return (
            [(r, e) for r, e in valid if e.input_id not in ids],
            [(r, error) for r, error in bad if _position(r) not in positions],
        )

    def _begin(self, positions: list[Position], abort: threading.Event) -> dict[Position, int]:
        if self._attempts is None or not positions:
            return {}
        attempts = self._attempts
        return retry(lambda: attempts.begin(positions), what="attempt count",
                     retriable=TRANSIENT, stop=abort, backoff=self._backoff,
                     on_failure=self._sink_failed)

    def _start_one(self, position: Position, abort: threading.Event) -> None:
        attempts = self._attempts
        if attempts is not None:
            retry(lambda: attempts.start_one(position), what="attempt count",
                  retriable=TRANSIENT, stop=abort, backoff=self._backoff,
                  on_failure=self._sink_failed)

    def _classify_and_add(
        self, items: Sequence[tuple[SourceRecord, InputEvent]], report: RunReport
    ) -> list[EnrichedEvent]:
        """Classify and hand the results to the checkpoint; the enriched events added."""
        if not items:
            return []
        started = time.perf_counter()
        results = self._isolate([e for _, e in items])
        model_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.model_latency.observe(model_ms / 1000.0)
        processed = self._clock()
        added: list[EnrichedEvent] = []
        for (record, event), result in zip(items, results, strict=True):
            if isinstance(result, BaseException):
                error = DecodeError("model_error", type(result).__name__)
                self._dead_letter(record, error, processed, report)
                continue
            prediction, evidence = result
            out = enrich(
                event, record, prediction, self._classifier.info, processed, model_ms, evidence
            )
            out = self._privacy.redact_output(out, event)
            raw = self._raw.get(event.input_id)
            if raw is not None:
                # For the opt-in raw store; the other sinks ignore raw rows.
                raw_event = RawEvent(
                    input_id=raw.input_id,
                    kind=out.kind,
                    conversation_id=out.conversation_id,
                    text=raw.text,
                    event_time=raw.ts,
                )
                self._checkpoint.add(raw_event, record.topic, record.partition, record.offset)
            fitted = fit_to_size(out, self._limits.max_message_bytes)
            if fitted is None:
                detail = f"enriched record over max_message_bytes={self._limits.max_message_bytes}"
                self._dead_letter(record, DecodeError("too_large", detail), processed, report)
                continue
            self._checkpoint.add(fitted, record.topic, record.partition, record.offset)
            added.append(fitted)
        return added

    def _isolate(self, events: Sequence[InputEvent]) -> list[Classified | Exception]:
        """Classify; on an exception split the batch in halves until the culprits are alone."""
        try:
            return list(self._classify(events))
        except Exception as exc:  # noqa: BLE001 - any model failure is isolated, not fatal
            if len(events) == 1:
                log.warning("model error", extra={"error": type(exc).__name__})
                return [exc]
        middle = len(events) // 2
        return self._isolate(events[:middle]) + self._isolate(events[middle:])

    def _classify(self, events: Sequence[InputEvent]) -> list[Classified]:
        return classify_events(
            self._classifier,
            events,
            self._tasks,
            max_sentences=self._limits.max_sentences,
            max_texts_per_forward=self._limits.max_texts_per_forward,
        )

    def _flush(
        self,
        abort: threading.Event,
        finished: list[Position],
        written: Sequence[EnrichedEvent],
        report: RunReport,
    ) -> Offsets:
        """Flush with retries, forget the finished records' counts, then count what is durable.

        Returns the offsets the flush made durable.
        """

        def succeeded() -> None:
            if self._on_sink_state is not None:
                self._on_sink_state("store", True, "")
                self._on_sink_state("broker", True, "")

        durable = retry(self._checkpoint.flush, what="flush", retriable=TRANSIENT, stop=abort,
                        backoff=self._backoff, on_failure=self._sink_failed,
                        on_success=succeeded)
        if self._attempts is not None and finished:
            try:
                self._attempts.finish(finished)
            except StoreError as exc:
                # Results are durable; a stale count only makes a redelivery go one by one.
                log.warning("could not clear attempt counts", extra={"error": str(exc)[:300]})
        # Counted once durable, so end-to-end latency means "event time to written".
        done = self._clock()
        for out in written:
            self._count(out, done, report)
        return durable

    def _sink_failed(self, exc: BaseException) -> None:
        if self._on_sink_state is not None:
            component = "store" if isinstance(exc, StoreError) else "broker"
            self._on_sink_state(component, False, f"{type(exc).__name__}: {exc}"[:300])

    def _count(self, out: EnrichedEvent, done: datetime, report: RunReport) -> None:
        self._metrics.messages.labels(out.source.topic, "enriched").inc()
        self._metrics.end_to_end_latency.observe(max(0.0, (done - out.event_time).total_seconds()))
        for task, task_result in ((INTENT, out.intent), (SENTIMENT, out.sentiment)):
            if task_result is not None:
                self._metrics.labels.labels(out.kind, task, task_result.label).inc()
        report.enriched += 1

    def _dead_letter(
        self, record: SourceRecord, error: DecodeError, received: datetime, report: RunReport
    ) -> None:
        kept = self._privacy.redact_bytes(record.value)
        if kept != record.value:
            # For the opt-in raw store; the other sinks ignore raw rows.
            raw = RawDeadLetter(
                record.topic, record.partition, record.offset, record.value, received
            )
            self._checkpoint.add(raw, record.topic, record.partition, record.offset)
        letter = DeadLetter(
            source=SourceRef(topic=record.topic, partition=record.partition, offset=record.offset),
            reason=error.reason,
            detail=error.detail,
            raw=kept,
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


def _position(record: SourceRecord) -> Position:
    return (record.topic, record.partition, record.offset)
