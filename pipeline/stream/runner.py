"""The run loop: poll, hand a batch to the classify thread, commit what it wrote.

Two threads, because kafka-python's consumer is not thread-safe and a group member
that stops polling for ``max.poll.interval.ms`` is thrown out of its group:

- the **polling thread** (the caller of :meth:`Runner.run`) owns the consumer: it
  gathers a micro-batch and hands it over, then keeps polling while the batch is in the
  model: the member stays alive, rebalance callbacks run, and the *next* batch is
  fetched meanwhile (fetching overlaps compute); once that one is full every partition
  is paused until the batch in flight is done, its offsets committed, and fetching
  resumes;
- the **classify thread** runs :class:`~pipeline.stream.processing.BatchProcessor`:
  decoding, the model, enrichment, and the sinks' flush with retries.

So a slow model, a slow sink or a store outage never costs the group membership, and
with one batch in flight and at most one waiting, memory stays flat under overload
(backpressure by pause/resume).  On a rebalance the batch in flight is finished and committed before
the partitions go; on shutdown it is drained within ``shutdown_timeout_s``.

*How* a batch is committed is :meth:`Checkpoint.commit
<pipeline.stream.checkpoint.Checkpoint.commit>`; the runner only decides *when*: after
each batch, at a rebalance, at shutdown, and again (with capped backoff) after a failure.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from consumers.source import CommitError, Partitions, Source, SourceRecord
from models.classifier import TextClassifier
from models.saving import ModelInfo
from pipeline.config import StreamSettings
from pipeline.errors import ConfigError, StoreError
from pipeline.metrics import Metrics
from pipeline.privacy import PrivacyPolicy
from pipeline.schema import Kind
from pipeline.sinks.base import Sink
from pipeline.store.attempts import AttemptLog
from pipeline.store.dedup import StoredLookup
from pipeline.stream.batching import MicroBatcher
from pipeline.stream.checkpoint import Checkpoint
from pipeline.stream.enrich import INTENT, SENTIMENT
from pipeline.stream.model_watch import ModelWatcher
from pipeline.stream.processing import (
    TRANSIENT,
    BatchCollaborators,
    BatchProcessor,
    Limits,
    RunReport,
)
from pipeline.stream.retry import Abandoned, Backoff

__all__ = ["Collaborators", "HealthReporter", "Limits", "RunReport", "Runner"]

log = logging.getLogger(__name__)

#: What a commit may fail with and succeed when tried again: the consumer's commit, or
#: (only after an abandoned batch) a sink's flush.
COMMIT_FAULTS: tuple[type[BaseException], ...] = (CommitError, *TRANSIENT)

#: ``/readyz`` detail of a member that joined its group but got no partitions.
IDLE_DETAIL = "0 partitions: idle standby (more members than partitions)"


def utc_now() -> datetime:
    """Processing time, timezone-aware UTC."""
    return datetime.now(UTC)


class HealthReporter(Protocol):
    """What the loop reports for ``/healthz`` and ``/readyz`` (see ``pipeline.health``)."""

    def set(self, component: str, ok: bool, detail: str = "") -> None:
        """Record one component's state."""

    def beat(self) -> None:
        """The loop is alive."""


@dataclass(frozen=True)
class Collaborators:
    """The run loop's optional collaborators (each ``None``: that duty is not done)."""

    #: Counts how often a record was started (redelivery limit); ``None``: no limit.
    attempts: AttemptLog | None = None
    #: Finds what a redelivered batch already stored (skipped, not produced again).
    lookup: StoredLookup | None = None
    #: Where ``/healthz`` and ``/readyz`` state goes.
    health: HealthReporter | None = None
    #: Redaction before anything is classified, stored or produced (``None``: the default).
    privacy: PrivacyPolicy | None = None
    #: Swaps in a new model between batches.
    model_watch: ModelWatcher | None = None
    #: Processing time.
    clock: Callable[[], datetime] = utc_now


class _InFlight:
    """One batch handed to the classify thread; ``wait`` until it is done."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the polling thread
            self.error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(timeout_s)


class _ClassifyThread:
    """The classify thread: one for the whole run, not one per batch.

    A daemon, so a stuck model never blocks exit.  Kept for the run (decision 0021) when a new
    thread per batch ran every forward pass in a thread torch's OpenMP pool had never seen
    (``predict`` on the harness mix 177-183 msg/s against 210-229); the torch runtime's
    forwards now run on :mod:`models.torch_thread` whatever thread asks (decision 0024), so
    this thread does the batch's Python work.  A batch abandoned while still running keeps its
    thread; the next batch gets a new one, so it never queues behind a stuck batch here.
    """

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[[], object], _InFlight] | None] = (
            queue.SimpleQueue()
        )
        self._last: _InFlight | None = None
        self._thread = threading.Thread(target=self._loop, name="classify", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """No batch of this thread is still running."""
        return self._last is None or self._last.done

    def submit(self, work: Callable[[], object]) -> _InFlight:
        """Run ``work`` on this thread (after any batch before it)."""
        inflight = _InFlight()
        self._last = inflight
        self._work.put((work, inflight))
        return inflight

    def retire(self) -> None:
        """End the thread once its queue is done."""
        self._work.put(None)

    def _loop(self) -> None:
        while (item := self._work.get()) is not None:
            work, inflight = item
            inflight.run(work)


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
        settings: StreamSettings | None = None,
        collaborators: Collaborators | None = None,
    ) -> None:
        """``settings``: batching, limits, retries and shutdown (the ``stream`` group)."""
        settings = settings if settings is not None else StreamSettings()
        parts = collaborators if collaborators is not None else Collaborators()
        health = parts.health
        retry_backoff_max_s = settings.retry_backoff_max_s
        tasks = [t.name for t in classifier.info.tasks]
        if SENTIMENT not in tasks:
            msg = f"model {classifier.info.name} has no sentiment task (tasks: {tasks})"
            raise ConfigError(msg)
        self._source = source
        self._metrics = metrics
        self._health = health
        self._batcher = MicroBatcher(
            source, settings.batch_max_size, settings.batch_max_wait_ms / 1000.0
        )
        self._checkpoint = Checkpoint(sinks, source)
        self._processor = BatchProcessor(
            classifier=classifier,
            checkpoint=self._checkpoint,
            topic_kinds=topic_kinds,
            metrics=metrics,
            tasks=[t for t in (INTENT, SENTIMENT) if t in tasks],
            limits=Limits.from_settings(settings),
            backoff=Backoff(0.5, retry_backoff_max_s),
            on_sink_state=self._report,
            collaborators=BatchCollaborators(
                attempts=parts.attempts,
                lookup=parts.lookup,
                privacy=parts.privacy,
                clock=parts.clock,
            ),
        )
        self._model_watch = parts.model_watch
        self._lag_interval_s = settings.lag_interval_s
        self._shutdown_timeout_s = settings.shutdown_timeout_s
        self._last_lag = 0.0
        self._inflight: _InFlight | None = None
        self._classify: _ClassifyThread | None = None
        self._paused = False
        self._abort = threading.Event()
        self._commit_backoff = Backoff(0.5, retry_backoff_max_s)
        self._next_commit_try = 0.0
        #: Totals of the current (or last) :meth:`run`, readable while it runs.
        self.totals = RunReport()
        self._publish_model_info(classifier.info)
        self._report("model", True)
        source.on_rebalance(self._on_revoked, self._on_assigned)

    def process(
        self, records: Sequence[SourceRecord], report: RunReport | None = None
    ) -> RunReport:
        """Handle one batch synchronously end to end (sinks, then commit); for tools and tests."""
        report = report if report is not None else RunReport()
        if records:
            self._processor.process(records, report, self._abort)
            self._commit(force=True)
        return report

    def run(
        self,
        stop: threading.Event,
        *,
        idle_exit_s: float | None = None,
        poll_timeout_s: float = 0.5,
    ) -> RunReport:
        """Loop until ``stop`` is set (or, with ``idle_exit_s``, the stream has been quiet).

        After ``stop`` the batch in flight is finished and committed; if it cannot finish
        within ``shutdown_timeout_s`` (a sink still down) it is abandoned uncommitted and
        will be redelivered.
        """
        report = self.totals = RunReport()
        idle_since = time.monotonic()
        stop_deadline: float | None = None
        self._abort.clear()
        while True:
            if self._health is not None:
                self._health.beat()
            if stop.is_set() and stop_deadline is None:
                stop_deadline = time.monotonic() + self._shutdown_timeout_s
            if self._inflight is None:
                self._commit()
                if stop.is_set():
                    break
                self._swap_model()
                records = self._next_batch(poll_timeout_s)
                if records:
                    self._start(records, report)
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                    break
            else:
                self._poll_while_busy()
                if self._inflight is not None and self._inflight.wait(0.02):
                    self._complete()
                elif stop_deadline is not None and time.monotonic() > stop_deadline:
                    log.warning("shutdown bound reached; abandoning the batch in flight")
                    self._abort.set()
                    if self._inflight is not None and not self._inflight.wait(2.0):
                        break
            self._measure_lag()
        self._commit(force=True)
        if self._classify is not None:
            self._classify.retire()
            self._classify = None
        log.info(
            "run loop stopped",
            extra={
                "batches": report.batches,
                "enriched": report.enriched,
                "dead_letters": report.dead_letters,
            },
        )
        return report

    def _swap_model(self) -> None:
        """Between batches (none in flight, the last committed): take a reloaded model."""
        if self._model_watch is None:
            return
        new = self._model_watch.ready()
        if new is None:
            return
        old = self._processor.classifier.info
        self._processor.use(new)
        # The new model lives until the next reload: out of the cyclic collector's reach, as
        # the service does with the first one (decision 0021).
        gc.collect()  # the old model's cycles first: they must not be frozen
        gc.freeze()
        info = new.info
        self._publish_model_info(info, replaces=old)
        self._metrics.model_reloads.labels("loaded").inc()
        log.info(
            "model swapped",
            extra={
                "old_version": old.version,
                "model": info.name,
                "model_version": info.version,
            },
        )

    def _publish_model_info(self, info: ModelInfo, replaces: ModelInfo | None = None) -> None:
        """``attnwatch_model_info`` names the serving model only."""
        if replaces is not None:
            with contextlib.suppress(KeyError):
                self._metrics.model_info.remove(
                    replaces.name, replaces.version, replaces.tokenizer_hash
                )
        self._metrics.model_info.labels(info.name, info.version, info.tokenizer_hash).set(1)

    def _next_batch(self, poll_timeout_s: float) -> list[SourceRecord]:
        records = self._batcher.next_batch(poll_timeout_s)
        if not records:
            return records
        # A rebalance between the polls of one batch can revoke a partition whose records
        # are already in hand: the new owner will process them, so must we not.
        owned = self._source.assignment()
        return [r for r in records if (r.topic, r.partition) in owned]

    def _poll_while_busy(self) -> None:
        """Poll while a batch is in the model, fetching the next one.

        Keeps the membership and runs rebalance callbacks; fetches the next batch until it
        is full, then pauses (backpressure).

        Non-blocking (``poll(0)`` handles only what has already arrived), so the batch's
        completion is noticed within the 20 ms wait that follows.
        """
        if self._paused:
            # Paused: fetches nothing.
            self._source.poll(0.0, 1)
            return
        self._batcher.prefetch(0.0)
        if self._batcher.full:
            self._source.pause()
            self._paused = True

    def _start(self, records: list[SourceRecord], report: RunReport) -> None:
        if self._classify is None or not self._classify.idle:
            # First batch, or the last one was abandoned still running: a thread of its own.
            if self._classify is not None:
                self._classify.retire()
            self._classify = _ClassifyThread()
        self._inflight = self._classify.submit(
            lambda: self._processor.process(records, report, self._abort)
        )

    def _complete(self) -> None:
        """The batch in flight is done: commit its offsets and fetch again."""
        inflight, self._inflight = self._inflight, None
        assert inflight is not None  # noqa: S101 - only called with a batch in flight
        self._resume()
        if isinstance(inflight.error, Abandoned):
            log.warning("batch abandoned uncommitted; it will be redelivered")
            return
        if inflight.error is not None:
            raise inflight.error
        self._commit(force=True)

    def _resume(self) -> None:
        if self._paused:
            self._source.resume()
            self._paused = False

    def _commit(self, force: bool = False) -> None:
        """Commit through the checkpoint now (``force``) or once the backoff allows."""
        if not force and time.monotonic() < self._next_commit_try:
            return
        try:
            committed = self._checkpoint.commit(self._source.assignment())
        except COMMIT_FAULTS as exc:
            # Offsets stay in the checkpoint; the loop tries again after the backoff.
            self._next_commit_try = time.monotonic() + self._commit_backoff.next_wait()
            self._metrics.commits.labels("failed").inc()
            component = "store" if isinstance(exc, StoreError) else "broker"
            self._report(component, False, str(exc)[:300])
            return
        if committed is not None:
            self._metrics.commits.labels("ok" if committed else "rebalanced").inc()
            self._report("broker", True)
        self._commit_backoff.reset()

    def _on_revoked(self, partitions: Partitions) -> None:
        """Finish and commit the batch in flight while we still own its partitions."""
        inflight = self._inflight
        if inflight is not None:
            if inflight.wait(self._shutdown_timeout_s):
                self._complete()
            else:
                # Still working: its records go to the new owner uncommitted (redelivered,
                # deduplicated by input id in the store).
                self._abort.set()
                inflight.wait(2.0)
                self._inflight = None
                self._abort.clear()
                self._resume()
        self._commit(force=True)
        self._batcher.drop(partitions)
        self._checkpoint.forget(partitions)
        for topic, partition in partitions:
            try:
                self._metrics.lag.remove(topic, str(partition))
            except KeyError:
                pass

    def _on_assigned(self, partitions: Partitions) -> None:
        # Joined the group: ready even with no partitions.  A member beyond the partition
        # count is a hot standby that takes partitions at the next rebalance; calling it
        # not ready would have an orchestrator restart it, and every restart rebalances the
        # whole group.
        owned = self._source.assignment()
        detail = f"{len(owned)} partitions" if owned else IDLE_DETAIL
        self._report("assignment", True, detail)

    def _report(self, component: str, ok: bool, detail: str = "") -> None:
        if self._health is not None:
            self._health.set(component, ok, detail)

    def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < self._lag_interval_s:
            return
        self._last_lag = now
        for (topic, partition), lag in self._source.lag().items():
            self._metrics.lag.labels(topic, str(partition)).set(lag)
