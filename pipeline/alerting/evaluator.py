"""The alert evaluator: every ``interval_s``, compare each scope's window with its baseline.

One evaluator is active across replicas (the ``alert-evaluator`` lease in the store); the
others wait.  Episodes are rows of the ``alerts`` table, keyed by scope and start, so a
restart or a hand-over neither re-fires an open episode nor forgets it: open rows are
resumed, and the baseline is the store itself.  Each state change becomes an
:class:`~pipeline.alerting.model.AlertEvent` with evidence: the window's most negative
messages with their top attention words, and the words whose attention mass rose most
against the baseline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from pipeline.alerting.buckets import BucketCache
from pipeline.alerting.detectors import (
    DriftDetector,
    DriftSettings,
    Opened,
    Resolved,
    ShiftDetector,
    ShiftSettings,
    counts_evidence,
)
from pipeline.alerting.detectors import Evidence as DetectorEvidence
from pipeline.alerting.evidence import firing_of, read_evidence
from pipeline.alerting.model import AlertEvent, Evidence, RelatedScope, RisingWord, Severity
from pipeline.alerting.notify import Notifier
from pipeline.alerting.windows import (
    Bucket,
    Comparison,
    ScopeKey,
    Window,
    residual_counts,
)
from pipeline.errors import StoreError
from pipeline.metrics import Metrics
from pipeline.store.alerts import AlertTable
from pipeline.store.lease import Lease

log = logging.getLogger(__name__)

LEASE = "alert-evaluator"


@dataclass(frozen=True)
class AlertSettings:
    """How the evaluator windows, tests and reports."""

    window: Window = field(default_factory=Window)
    shift: ShiftSettings = field(default_factory=ShiftSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    interval_s: float = 15.0
    lease_ttl_s: float = 60.0
    evidence_messages: int = 5
    rising_words: int = 5
    #: Baseline rows sampled for the rising-words comparison (newest first).
    baseline_sample: int = 2000


@dataclass
class Incident:
    """One open episode: the scope that fired and the scopes its messages explain.

    ``members`` are the scopes whose detectors are open in this episode now (the primary
    included while it is); the episode resolves when none is left.  ``related`` keeps
    every scope that joined, for the resolve event.
    """

    primary: ScopeKey
    alert_id: str
    started: datetime
    detector: str
    members: set[ScopeKey] = field(default_factory=set)
    related: dict[ScopeKey, DetectorEvidence] = field(default_factory=dict)
    evidence: DetectorEvidence | None = None
    announced: bool = False


class Evaluator:
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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or AlertSettings()
        self._engine = engine
        self._metrics = metrics
        self._notifier = notifier
        self._on_event = on_event
        self._clock = clock
        self._table = AlertTable(engine)
        self._lease = Lease(engine, LEASE, owner, self.settings.lease_ttl_s)
        self._detectors: dict[ScopeKey, ShiftDetector] = {}
        self._drift: dict[ScopeKey, DriftDetector] = {}
        self._incidents: dict[ScopeKey, Incident] = {}  # member scope -> its episode
        self._buckets = BucketCache(self.settings.window)
        self._leading = False

    def evaluate(self, now: datetime | None = None) -> list[AlertEvent]:
        """One evaluation; the events it emitted (none unless this process holds the lease)."""
        now = now or self._clock()
        if not self._lease.acquire(now):
            if self._leading:
                self._step_down()
            return []
        if not self._leading:
            self._resume_open_episodes()
            self._leading = True
        window = self.settings.window
        buckets = self._buckets.read(self._engine, now)
        comparisons = window.compare(buckets, now)
        for key in self._detectors:
            comparisons.setdefault(key, Comparison())  # a silent scope must still resolve
        drifted = self._feed_drift(window.closed(buckets, now), window.current_start(now))
        opened: list[tuple[ScopeKey, Opened]] = []
        resolved: list[ScopeKey] = []
        for key, comparison in sorted(comparisons.items()):
            detector = self._detectors.setdefault(key, ShiftDetector(self.settings.shift))
            current, baseline = comparison.current, comparison.baseline
            change = detector.evaluate(
                now,
                current.negative,
                current.n,
                baseline.negative,
                baseline.n,
                drifted=key in drifted,
            )
            self._gauges(key, comparison, detector)
            if isinstance(change, Opened):
                opened.append((key, change))
            elif isinstance(change, Resolved):
                resolved.append(key)
        events: list[AlertEvent] = []
        for key in resolved:
            event = self._leave(key, now)
            if event is not None:
                events.append(event)
        for incident in self._group(opened, now):
            event = self._emit(incident, "firing", now)
            if event is not None:
                events.append(event)
        self._stream_gauges(comparisons)
        return events

    def run(self, stop: threading.Event) -> None:
        """Evaluate every ``interval_s`` until ``stop``; store faults are logged and retried."""
        while not stop.is_set():
            try:
                self.evaluate()
            except StoreError as exc:
                log.warning("alert evaluation failed", extra={"error": str(exc)[:300]})
            stop.wait(self.settings.interval_s)
        if self._leading:
            try:
                self._lease.release()
            except StoreError:
                pass

    def _feed_drift(self, closed: list[Bucket], current_start: datetime) -> set[ScopeKey]:
        """Feed each scope's closed buckets to its drift detector; the scopes that drifted.

        A new leader feeds the whole baseline once, rebuilding the detector's state from
        the store; a drift found in that history (before the current window) is old news.
        """
        drifted: set[ScopeKey] = set()
        for bucket in closed:
            detector = self._drift.setdefault(bucket.key, DriftDetector(self.settings.drift))
            signal = detector.update(bucket.start, bucket.negative, bucket.n)
            if signal is not None and signal.at >= current_start:
                drifted.add(bucket.key)
        return drifted

    def _group(self, opened: list[tuple[ScopeKey, Opened]], now: datetime) -> list[Incident]:
        """Attach each newly open scope to the episode that explains it, or start one."""

        def priority(item: tuple[ScopeKey, Opened]) -> tuple[bool, float, float]:
            (_, scope_kind, _), change = item
            e = change.evidence
            return (scope_kind == "overall", -(e.current_share - e.baseline_share), -e.z)

        fresh: list[Incident] = []
        for key, change in sorted(opened, key=priority):
            incident = self._explaining(key, now)
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

    def _explaining(self, key: ScopeKey, now: datetime) -> Incident | None:
        """The open episode of ``key``'s stream without whose messages ``key`` has no shift."""
        detector = self._detectors[key]
        seen: set[str] = set()
        for incident in list(self._incidents.values()):
            if incident.alert_id in seen or incident.primary[0] != key[0]:
                continue
            seen.add(incident.alert_id)
            rest = residual_counts(self._engine, key, incident.primary, self.settings.window, now)
            evidence = counts_evidence(
                rest.current_negative, rest.current_n, rest.baseline_negative, rest.baseline_n
            )
            if not detector.shows_shift(evidence):
                return incident
        return None

    def _leave(self, key: ScopeKey, now: datetime) -> AlertEvent | None:
        """``key``'s detector resolved; the episode resolves once no member is left."""
        incident = self._incidents.pop(key, None)
        if incident is None:
            return None
        incident.members.discard(key)
        if incident.members:
            return None
        return self._emit(incident, "resolved", now)

    def _resume_open_episodes(self) -> None:
        rows = self._table.rows(status="firing", limit=10_000)
        log.info(
            "alert evaluator leading",
            extra={"resumed_alerts": [row["alert_id"] for row in rows]},
        )
        for row in rows:
            key: ScopeKey = (row["stream"], row["scope_kind"], row["scope"])
            detector = self._detectors.setdefault(key, ShiftDetector(self.settings.shift))
            detector.resume(row["starts_at"])
            payload = row["payload"]
            self._incidents[key] = Incident(
                primary=key,
                alert_id=row["alert_id"],
                started=row["starts_at"],
                detector=str(payload.get("detector", "two_proportion_z")),
                members={key},
                announced=True,
            )
            self._metrics.shift_active.labels(row["scope_kind"], row["scope"], row["stream"]).set(1)

    def _step_down(self) -> None:
        # Another replica evaluates now: our gauges would keep an episode "active" forever.
        self._leading = False
        self._detectors.clear()
        self._drift.clear()
        self._incidents.clear()
        self._buckets = BucketCache(self.settings.window)
        for gauge in (
            self._metrics.shift_active,
            self._metrics.shift_statistic,
            self._metrics.negative_share,
        ):
            gauge.clear()

    def _emit(self, incident: Incident, status: str, now: datetime) -> AlertEvent | None:
        stream, scope_kind, scope = incident.primary
        detector = self._detectors.get(incident.primary)
        e = incident.evidence if status == "firing" else None
        if e is None:
            e = detector.last if detector is not None and detector.last is not None else None
        if e is None:
            e = counts_evidence(0, 0, 0, 0)
        where = f"{scope_kind} {scope!r}" if scope_kind != "overall" else "overall"
        summary = (
            f"{stream} {where}: negative share {e.current_share:.0%} over {e.current_n} messages "
            f"vs {e.baseline_share:.0%} over {e.baseline_n} in the baseline"
        )
        related = {
            (k[1], k[2]): RelatedScope(
                scope_kind=k[1],
                scope=k[2],
                baseline_share=r.baseline_share,
                current_share=r.current_share,
                statistic=r.z,
            )
            for k, r in sorted(incident.related.items())
        }
        severity: Severity = "critical" if e.z >= 2 * self.settings.shift.z_open else "warning"
        before: AlertEvent | None = None
        if status == "firing":
            evidence, rising = self._evidence(incident.primary, now)
        else:
            # What the whole episode was about: its most negative messages and rising words
            # from the first bucket of the window that fired to now.
            fired = self._table.get(incident.alert_id)
            before = AlertEvent.model_validate(fired["payload"]) if fired else None
            since = self.settings.window.current_start(incident.started)
            evidence, rising = self._evidence(incident.primary, now, since)
            if before is not None:
                summary = (
                    f"{stream} {where}: over; negative share back to {e.current_share:.0%} "
                    f"(fired at {before.current_share:.0%} vs {before.baseline_share:.0%})"
                )
            for r in before.related if before else []:
                related.setdefault((r.scope_kind, r.scope), r)
            # The labels (severity among them) must not change, or the receiver would see
            # the resolve as another alert (the fingerprint hashes the labels).
            severity = before.severity if before else severity
        event = AlertEvent(
            alert_id=incident.alert_id,
            status="firing" if status == "firing" else "resolved",
            scope_kind=scope_kind,
            scope=scope,
            stream="chat" if stream == "chat" else "news",
            severity=severity,
            starts_at=incident.started,
            ends_at=now if status == "resolved" else None,
            summary=summary,
            baseline_share=e.baseline_share,
            current_share=e.current_share,
            baseline_n=e.baseline_n,
            current_n=e.current_n,
            statistic=e.z,
            detector=incident.detector,
            evidence=evidence,
            rising_words=rising,
            related=sorted(related.values(), key=lambda r: (r.scope_kind, r.scope)),
            fired=firing_of(before),
        )
        payload = event.model_dump_json()
        if status == "firing":
            fresh = self._table.fire(
                {
                    "alert_id": incident.alert_id,
                    "scope_kind": scope_kind,
                    "scope": scope,
                    "stream": stream,
                    "severity": event.severity,
                    "starts_at": incident.started,
                    "statistic": e.z,
                    "payload": payload,
                },
                now,
            )
            incident.announced = True
        else:
            fresh = self._table.resolve(incident.alert_id, now, payload, now)
        if not fresh:
            return None  # another evaluator recorded this change already
        self._metrics.alerts.labels(status).inc()
        log.warning(
            "alert", extra={"alert_id": incident.alert_id, "status": status, "z": round(e.z, 2)}
        )
        if self._notifier is not None:
            self._notifier.notify(event)
        if self._on_event is not None:
            self._on_event(event)
        return event

    def _gauges(self, key: ScopeKey, comparison: Comparison, detector: ShiftDetector) -> None:
        stream, scope_kind, scope = key
        labels = (scope_kind, scope, stream)
        self._metrics.negative_share.labels(*labels).set(comparison.current.negative_share)
        z = detector.last.z if detector.last is not None else 0.0
        self._metrics.shift_statistic.labels(*labels).set(z)
        self._metrics.shift_active.labels(*labels).set(1 if detector.open_since else 0)

    def _stream_gauges(self, comparisons: dict[ScopeKey, Comparison]) -> None:
        for (stream, scope_kind, _), comparison in comparisons.items():
            if scope_kind != "overall":
                continue
            cur = comparison.current
            if cur.n_intent:
                self._metrics.confidence_mean.labels(stream, "intent").set(cur.mean_confidence)
                self._metrics.unknown_intent_share.labels(stream).set(cur.unknown_share)

    def _evidence(
        self, key: ScopeKey, now: datetime, since: datetime | None = None
    ) -> tuple[list[Evidence], list[RisingWord]]:
        """Evidence since ``since`` (default: the current window's start): read_evidence."""
        s = self.settings
        start = since if since is not None else s.window.current_start(now)
        return read_evidence(
            self._engine,
            key,
            start,
            s.window.baseline_s,
            messages=s.evidence_messages,
            words=s.rising_words,
            sample=s.baseline_sample,
        )
