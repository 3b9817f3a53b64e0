"""Alert episodes: what is open, and how a state change becomes a recorded, notified event.

An :class:`Incident` is one open episode (the scope that fired and the scopes it explains).
:class:`Recorder` turns its firing or its resolve into an
:class:`~pipeline.alerting.model.AlertEvent` with evidence, records it in the ``alerts``
table (the source of truth; insert-or-ignore by episode id, so replaying a step after a
crash records nothing twice), queues notifications and hands it on (``on_event``: the
``alerts`` topic).  Times: ``starts_at``/``ends_at`` are event time (bucket starts),
``detected_at`` processing time; an event found more than ``late_after_s`` after its bucket
closed is ``late``, and history mode ``record`` does not notify late firings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.engine import Engine

from pipeline.alerting.detectors import Evidence as DetectorEvidence
from pipeline.alerting.detectors import ShiftSettings, counts_evidence
from pipeline.alerting.evidence import firing_of, read_evidence
from pipeline.alerting.model import AlertEvent, Evidence, RelatedScope, RisingWord, Severity
from pipeline.alerting.notify import Notifier
from pipeline.alerting.windows import ScopeKey, Window
from pipeline.metrics import Metrics
from pipeline.store.alerts import AlertTable

log = logging.getLogger(__name__)

#: What happens to an episode found in history (a backlog, a backfill): ``notify`` as if
#: live, or ``record`` only (table and topic).  An episode still open at the watermark
#: notifies in both.
HistoryMode = Literal["notify", "record"]


@dataclass
class Incident:
    """One open episode: the scope that fired and the scopes its messages explain.

    ``members`` are the scopes whose detectors are open in this episode now (the primary
    included while it is); the episode resolves when none is left.  ``related`` keeps
    every scope that joined, for the resolve event.  ``notified``: its firing was queued
    for the receivers (so its resolve is too).
    """

    primary: ScopeKey
    alert_id: str
    started: datetime
    detector: str
    members: set[ScopeKey] = field(default_factory=set)
    related: dict[ScopeKey, DetectorEvidence] = field(default_factory=dict)
    evidence: DetectorEvidence | None = None
    announced: bool = False
    notified: bool = False


@dataclass(frozen=True)
class RecorderSettings:
    """What :class:`Recorder` needs of the evaluator's settings."""

    window: Window
    shift: ShiftSettings
    evidence_messages: int
    rising_words: int
    baseline_sample: int
    late_after_s: float
    history: HistoryMode


class Recorder:
    """Builds, records, notifies and hands on alert events."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        settings: RecorderSettings,
        notifier: Notifier | None,
        on_event: Callable[[AlertEvent], None] | None,
        relay: Callable[[AlertEvent], None] | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self.settings = settings
        self._notifier = notifier
        self._on_event = on_event
        self._relay = relay
        self.table = AlertTable(engine)

    def emit(
        self,
        incident: Incident,
        status: Literal["firing", "resolved"],
        at: datetime,
        now: datetime,
        last: DetectorEvidence | None,
    ) -> AlertEvent | None:
        """Record ``incident``'s change at event time ``at`` (found at ``now``); the new event.

        ``None`` when the change was recorded before (a replayed step, another evaluator).
        ``last``: the primary scope's latest test, for a resolve.
        """
        s = self.settings
        stream, scope_kind, scope = incident.primary
        e = incident.evidence if status == "firing" else None
        e = e or last or counts_evidence(0, 0, 0, 0)
        delay = (now - at).total_seconds() - s.window.bucket_s
        late = delay > s.late_after_s
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
        severity: Severity = "critical" if e.z >= 2 * s.shift.z_open else "warning"
        before: AlertEvent | None = None
        if status == "firing":
            evidence, rising = self.evidence(incident.primary, at)
        else:
            # What the whole episode was about: its most negative messages and rising words
            # from the first bucket of the window that fired to its end.
            fired = self.table.get(incident.alert_id)
            before = AlertEvent.model_validate(fired["payload"]) if fired else None
            since = s.window.current_start(incident.started)
            evidence, rising = self.evidence(incident.primary, at, since)
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
        if late:
            summary = f"{summary} [found late, {_duration(delay)} after the fact: catching up]"
        event = AlertEvent(
            alert_id=incident.alert_id,
            status=status,
            scope_kind=scope_kind,
            scope=scope,
            stream="chat" if stream == "chat" else "news",
            severity=severity,
            starts_at=incident.started,
            ends_at=at if status == "resolved" else None,
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
            detected_at=now,
            detection_delay_s=round(delay, 3),
            late=late,
        )
        payload = event.model_dump_json()
        if status == "firing":
            fresh = self.table.fire(
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
            fresh = self.table.resolve(incident.alert_id, at, payload, now)
        # Queuing is idempotent per (alert, status, receiver): a replayed step re-queues
        # nothing that was queued, and queues what a crash left unqueued.
        if status == "firing" and (not late or s.history == "notify"):
            self.notify(incident, event)
        elif status == "resolved" and incident.notified:
            self.notify(incident, event)
        if self._relay is not None:
            # Every change goes to the topic, in every history mode; queuing is idempotent
            # too, so a replayed step relays what a crash left unpublished.
            self._relay(event)
        if not fresh:
            return None  # recorded already: a replayed step, or another evaluator
        self._metrics.alerts.labels(status).inc()
        log.warning(
            "alert",
            extra={
                "alert_id": incident.alert_id,
                "status": status,
                "z": round(e.z, 2),
                "late": late,
                "detection_delay_s": round(delay, 1),
            },
        )
        if self._on_event is not None:
            self._on_event(event)
        return event

    def notify(self, incident: Incident, event: AlertEvent) -> None:
        """Queue ``event`` for the receivers (if any); the incident is then ``notified``."""
        if self._notifier is not None:
            self._notifier.notify(event)
        incident.notified = True

    def notify_open(self, incident: Incident) -> None:
        """Notify the firing of an episode recorded without notice (history ``record``).

        An episode still open at the watermark notifies whatever the mode.
        """
        if incident.notified:
            return
        row = self.table.get(incident.alert_id)
        if row is None or row["status"] != "firing":
            return
        self.notify(incident, AlertEvent.model_validate(row["payload"]))
        log.info("open episode found in history notified", extra={"alert_id": incident.alert_id})

    def evidence(
        self, key: ScopeKey, at: datetime, since: datetime | None = None
    ) -> tuple[list[Evidence], list[RisingWord]]:
        """Evidence from ``since`` (default: the current window's start) to ``at``'s bucket."""
        s = self.settings
        start = since if since is not None else s.window.current_start(at)
        return read_evidence(
            self._engine,
            key,
            start,
            s.window.baseline_s,
            messages=s.evidence_messages,
            words=s.rising_words,
            sample=s.baseline_sample,
            until=at + timedelta(seconds=s.window.bucket_s),
        )


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
