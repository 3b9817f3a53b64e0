"""The alert evaluator: step through every closed event-time bucket, in order, per stream.

One evaluator is active across replicas (the ``alert-evaluator`` lease in the store); the
others wait.  Each evaluation reads every stream's watermark (:mod:`.watermark`: the event
time up to which the store is complete) and evaluates each bucket that closed since the
last one it evaluated, in event-time order, with the same windows, detectors, hysteresis
and cool-down whether the bucket is a minute or a day old: a backlog, a backfill or a
replay raises the alert it contains (see ``docs/decisions/0012-event-time-alerting.md``).
The last evaluated bucket and every scope's detector state are saved in the store
(:mod:`pipeline.store.alert_state`) after each bucket that changed an episode and after
each chunk, so a restart or a lease hand-over goes on where it stopped; a step replayed
after a crash records nothing twice (episode ids are scope + start).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from pipeline.alerting.detectors import (
    DriftDetector,
    Opened,
    Resolved,
    ShiftDetector,
    counts_evidence,
)
from pipeline.alerting.episodes import Incident, Recorder, RecorderSettings
from pipeline.alerting.model import AlertEvent, Evidence, RisingWord
from pipeline.alerting.notify import Notifier
from pipeline.alerting.progress import AlertSettings, Persisted, StreamRun, first_event
from pipeline.alerting.sliding import Sliding
from pipeline.alerting.watermark import Watermarks
from pipeline.alerting.windows import (
    Bucket,
    Comparison,
    ScopeKey,
    align,
    read_buckets,
    residual_counts,
)
from pipeline.errors import StoreError
from pipeline.metrics import Metrics
from pipeline.store.alert_state import AlertStateTable
from pipeline.store.lease import Lease

log = logging.getLogger(__name__)

LEASE = "alert-evaluator"
__all__ = ["LEASE", "AlertSettings", "Evaluator"]


class Evaluator(Persisted):
    """Evaluates every scope; emits alert events to the table, the notifier and ``on_event``.

    One shift moves several scopes at once: an outage on the app channel raises the
    negative share of ``channel app``, of ``intent card_declined`` and of ``overall``.
    That is one episode, so one alert: a scope that opens while an episode of its stream
    is open *joins* it when, without the episode scope's messages, its own shift is gone
    (:func:`~pipeline.alerting.windows.residual_counts` fails the opening rule).  Of the
    scopes that open together, the one with the largest rise fires (``overall`` last);
    an unrelated shift in the same stream still fires its own alert.
    """

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        *,
        owner: str,
        settings: AlertSettings | None = None,
        notifier: Notifier | None = None,
        on_event: Callable[[AlertEvent], None] | None = None,
        relay: Callable[[AlertEvent], None] | None = None,
        on_lead: Callable[[], object] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = s = settings or AlertSettings()
        self._engine = engine
        self._metrics = metrics
        self._clock = clock
        self._recorder = Recorder(
            engine,
            metrics,
            RecorderSettings(
                s.window, s.shift, s.evidence_messages, s.rising_words, s.baseline_sample,
                s.late_after_s, s.history,
            ),
            notifier,
            on_event,
            relay,
        )  # fmt: skip
        self._state = AlertStateTable(engine)
        self._lease = Lease(engine, LEASE, owner, s.lease_ttl_s)
        self._marks = Watermarks(engine, s.window.lateness_s, s.idle_s)
        self._streams: dict[str, StreamRun] = {}
        self._incidents: dict[ScopeKey, Incident] = {}  # member scope -> its episode
        self._unsaved: list[Incident] = []  # open episodes of a stream without saved state
        self._leading = False
        self._on_lead = on_lead

    def evaluate(self, now: datetime | None = None, *, final: bool = False) -> list[AlertEvent]:
        """Evaluate every bucket closed since the last call; the events emitted.

        None unless this process holds the lease.  ``final``: the input is over
        (``run --idle-exit``): evaluate up to the final watermark, every bucket holding an
        event.  ``now`` (processing time) defaults to the clock.
        """
        explicit = now is not None
        now = now or self._clock()
        if not self._lease.acquire(now):
            if self._leading:
                self._step_down()
            return []
        if not self._leading:
            self._lead()
            self._leading = True
            if self._on_lead is not None:
                self._on_lead()  # e.g. publish what the previous leader left claimed
        marks = self._marks.update(now)
        if final:
            marks = self._marks.final(self.settings.window.bucket_s)
        events: list[AlertEvent] = []
        for stream in sorted(marks):
            self._metrics.alert_watermark_lag.labels(stream).set(
                max(0.0, (now - marks[stream]).total_seconds())
            )
            renew = (lambda: self._lease.acquire(self._clock())) if not explicit else None
            if not self._advance(stream, marks[stream], now, events, renew):
                break  # the lease was lost mid-backlog
        return events

    def _evidence(
        self, key: ScopeKey, at: datetime, since: datetime | None = None
    ) -> tuple[list[Evidence], list[RisingWord]]:
        """The evidence an alert of ``key`` at ``at`` would carry (tests read it)."""
        return self._recorder.evidence(key, at, since)

    def run(self, stop: threading.Event) -> None:
        """Evaluate every ``interval_s`` until ``stop``; store faults are logged and retried."""
        while not stop.is_set():
            try:
                self.evaluate()
            except StoreError as exc:
                log.warning("alert evaluation failed", extra={"error": str(exc)[:300]})
            stop.wait(self.settings.interval_s)
        self.release()

    @property
    def leading(self) -> bool:
        """Whether this process held the lease at its last evaluation."""
        return self._leading

    def release(self) -> None:
        """Give the lease up (on shutdown), so another replica takes over at once."""
        if self._leading:
            try:
                self._lease.release()
            except StoreError:
                pass
            self._leading = False

    def _advance(
        self,
        stream: str,
        watermark: datetime,
        now: datetime,
        events: list[AlertEvent],
        renew: Callable[[], bool] | None,
    ) -> bool:
        """Evaluate ``stream``'s closed buckets up to ``watermark``; False if the lease went."""
        w, s = self.settings.window, self.settings
        step = timedelta(seconds=w.bucket_s)
        last_closed = align(watermark, w.bucket_s) - step  # [t, t + step) ends by watermark
        run = self._streams.get(stream)
        cursor = run.evaluated + step if run is not None and run.evaluated else None
        if cursor is None:
            first = first_event(self._engine, stream)
            if first is None:
                return True
            cursor = align(first, w.bucket_s)
        # History older than one window before the newest event is not stepped through:
        # the detectors need one window to be warm, and a store kept for months must not be
        # replayed on a first start.  (Quiet time after the newest event is: an idle
        # stream's episodes resolve there.)
        newest = self._marks.newest(stream) or last_closed
        horizon = align(newest - timedelta(seconds=w.baseline_s + w.current_s), w.bucket_s)
        if cursor < horizon:
            log.info(
                "alert history skipped",
                extra={"stream": stream, "from": cursor.isoformat(), "to": horizon.isoformat()},
            )
            cursor = horizon
        for incident in [i for i in self._unsaved if i.primary[0] == stream]:
            self._unsaved.remove(incident)
            if incident.started < cursor:
                self._resume(incident)
            # else: evaluating from before its start opens it again (same id, recorded once).
        if cursor > last_closed:
            return True
        run = self._streams.get(stream)
        if run is None:
            run = self._streams[stream] = StreamRun(Sliding(w))
        if run.sliding.at != cursor - step:
            # A new leader, or history skipped: sum the window before ``cursor`` again.
            run.sliding = Sliding(w)
            since = cursor - timedelta(seconds=w.baseline_s + w.current_s)
            run.sliding.advance(cursor - step, read_buckets(
                self._engine, since, cursor, w.bucket_s, stream=stream))  # fmt: skip
        while cursor <= last_closed:
            end = min(last_closed + step, cursor + s.chunk_buckets * step)
            by_start: dict[datetime, list[Bucket]] = defaultdict(list)
            for bucket in read_buckets(self._engine, cursor, end, w.bucket_s, stream=stream):
                by_start[bucket.start].append(bucket)
            while cursor < end:
                changed = self._step(run, cursor, by_start.pop(cursor, []), now, events)
                run.evaluated = cursor
                if changed:
                    self._save(stream, now)
                cursor += step
            self._save(stream, now)
            if cursor <= last_closed and renew is not None and not renew():
                log.warning("alert lease lost while catching up", extra={"stream": stream})
                self._step_down()
                return False
        # At the watermark: an episode still open notifies whatever the history mode.
        for incident in {id(i): i for i in self._incidents.values()}.values():
            if incident.primary[0] == stream and not incident.notified:
                self._recorder.notify_open(incident)
                self._save(stream, now)
        return True

    def _step(
        self, run: StreamRun, at: datetime, buckets: list[Bucket], now: datetime,
        events: list[AlertEvent],
    ) -> bool:  # fmt: skip
        """Evaluate the bucket starting ``at``; True if an episode changed."""
        comparisons = run.sliding.advance(at, buckets)
        drifted: set[ScopeKey] = set()
        for bucket in buckets:
            drift = run.drift.setdefault(bucket.key, DriftDetector(self.settings.drift))
            if drift.update(bucket.start, bucket.negative, bucket.n) is not None:
                drifted.add(bucket.key)
        opened: list[tuple[ScopeKey, Opened]] = []
        resolved: list[ScopeKey] = []
        # A silent scope must still resolve: every detector is evaluated.
        for key in sorted(set(comparisons) | set(run.detectors)):
            comparison = comparisons.get(key) or Comparison()
            detector = run.detectors.setdefault(key, ShiftDetector(self.settings.shift))
            current, baseline = comparison.current, comparison.baseline
            change = detector.evaluate(
                at, current.negative, current.n, baseline.negative, baseline.n,
                drifted=key in drifted,
            )  # fmt: skip
            self._gauges(key, comparison, detector)
            if isinstance(change, Opened):
                opened.append((key, change))
            elif isinstance(change, Resolved):
                resolved.append(key)
            elif key not in comparisons and detector.open_since is None:
                # Nothing of this scope in the whole window: forget it (bounded memory).
                del run.detectors[key]
                run.drift.pop(key, None)
        for key in resolved:
            self._leave(run, key, at, now, events)
        for incident in self._group(run, opened, at):
            last = run.detectors[incident.primary].last
            event = self._recorder.emit(incident, "firing", at, now, last)
            if event is not None:
                events.append(event)
        return bool(opened or resolved)

    def _group(
        self, run: StreamRun, opened: list[tuple[ScopeKey, Opened]], at: datetime
    ) -> list[Incident]:
        """Attach each newly open scope to the episode that explains it, or start one."""

        def priority(item: tuple[ScopeKey, Opened]) -> tuple[bool, float, float]:
            (_, scope_kind, _), change = item
            e = change.evidence
            return (scope_kind == "overall", -(e.current_share - e.baseline_share), -e.z)

        fresh: list[Incident] = []
        for key, change in sorted(opened, key=priority):
            incident = self._explaining(run, key, at)
            if incident is None:
                stream, scope_kind, scope = key
                incident = Incident(
                    primary=key,
                    alert_id=f"{stream}:{scope_kind}:{scope}:{change.at.isoformat()}",
                    started=change.at,
                    detector=change.detector,
                    evidence=change.evidence,
                )
                fresh.append(incident)
            else:
                incident.related[key] = change.evidence
                log.info(
                    "scope joined an open alert",
                    extra={"alert_id": incident.alert_id, "scope": ":".join(key)},
                )
            incident.members.add(key)
            self._incidents[key] = incident
        return fresh

    def _explaining(self, run: StreamRun, key: ScopeKey, at: datetime) -> Incident | None:
        """The open episode of ``key``'s stream without whose messages ``key`` has no shift."""
        detector = run.detectors[key]
        seen: set[str] = set()
        for incident in list(self._incidents.values()):
            if incident.alert_id in seen or incident.primary[0] != key[0]:
                continue
            seen.add(incident.alert_id)
            rest = residual_counts(self._engine, key, incident.primary, self.settings.window, at)
            evidence = counts_evidence(
                rest.current_negative, rest.current_n, rest.baseline_negative, rest.baseline_n
            )
            if not detector.shows_shift(evidence):
                return incident
        return None

    def _leave(
        self, run: StreamRun, key: ScopeKey, at: datetime, now: datetime,
        events: list[AlertEvent],
    ) -> None:  # fmt: skip
        """``key``'s detector resolved; the episode resolves once no member is left."""
        incident = self._incidents.pop(key, None)
        if incident is None:
            return
        incident.members.discard(key)
        if incident.members:
            return
        primary = run.detectors.get(incident.primary)
        last = primary.last if primary is not None else None
        event = self._recorder.emit(incident, "resolved", at, now, last)
        if event is not None:
            events.append(event)

    def _gauges(self, key: ScopeKey, comparison: Comparison, detector: ShiftDetector) -> None:
        stream, scope_kind, scope = key
        labels = (scope_kind, scope, stream)
        self._metrics.negative_share.labels(*labels).set(comparison.current.negative_share)
        z = detector.last.z if detector.last is not None else 0.0
        self._metrics.shift_statistic.labels(*labels).set(z)
        self._metrics.shift_active.labels(*labels).set(1 if detector.open_since else 0)
        if scope_kind == "overall" and comparison.current.n_intent:
            cur = comparison.current
            self._metrics.confidence_mean.labels(stream, "intent").set(cur.mean_confidence)
            self._metrics.unknown_intent_share.labels(stream).set(cur.unknown_share)
