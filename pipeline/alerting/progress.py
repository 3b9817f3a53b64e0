"""The evaluator's settings, its per-stream state, and that state kept in the store.

:class:`Persisted` is the part of :class:`~pipeline.alerting.evaluator.Evaluator` that
takes over as leader (loads the last evaluated bucket, every scope's detector state and the
open episodes from the store) and saves them after each bucket that changed an episode and
after each chunk (:mod:`pipeline.store.alert_state`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.detectors import DriftDetector, DriftSettings, ShiftDetector, ShiftSettings
from pipeline.alerting.episodes import HistoryMode, Incident, Recorder
from pipeline.alerting.sliding import Sliding
from pipeline.alerting.watermark import Watermarks
from pipeline.alerting.windows import ScopeKey, Window
from pipeline.metrics import Metrics
from pipeline.store.alert_state import AlertStateTable
from pipeline.store.tables import events_table

log = logging.getLogger("pipeline.alerting.evaluator")

STREAMS = ("chat", "news")


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
    #: A partition that stored nothing for this long (processing time) is idle; a stream
    #: whose partitions are all idle has its watermark advanced by processing time.
    idle_s: float = 300.0
    #: A change found more than this after its bucket closed (event time) is ``late``.
    late_after_s: float = 600.0
    #: Episodes found in history: ``notify`` or only ``record`` them.
    history: HistoryMode = "notify"
    #: Buckets read and evaluated per store read while catching up (bounds memory).
    chunk_buckets: int = 60


@dataclass
class StreamRun:
    """One stream's evaluation: its sliding window, detectors and the last bucket evaluated."""

    sliding: Sliding
    evaluated: datetime | None = None
    detectors: dict[ScopeKey, ShiftDetector] = field(default_factory=dict)
    drift: dict[ScopeKey, DriftDetector] = field(default_factory=dict)


class Persisted:
    """Leading and saving: the evaluator's state in the store (a mixin of ``Evaluator``)."""

    settings: AlertSettings
    _engine: Engine
    _metrics: Metrics
    _recorder: Recorder
    _state: AlertStateTable
    _marks: Watermarks
    _streams: dict[str, StreamRun]
    _incidents: dict[ScopeKey, Incident]
    _unsaved: list[Incident]
    _leading: bool

    def _lead(self) -> None:
        """Become the evaluator: take back the saved state and the open episodes."""
        rows = self._recorder.table.rows(status="firing", limit=10_000)
        saved = {stream: self._state.load(stream) for stream in STREAMS}
        notified = {
            alert_id
            for state in saved.values()
            if state is not None
            for alert_id in state.extra.get("notified", [])
        }
        by_id: dict[str, Incident] = {}
        for row in rows:
            key: ScopeKey = (row["stream"], row["scope_kind"], row["scope"])
            state = saved.get(row["stream"])
            if state is not None and (
                state.evaluated is None or state.evaluated < row["starts_at"]
            ):
                # Recorded, then the process died before saving the step: the step is
                # evaluated again and opens the same episode (same id, recorded once).
                continue
            by_id[row["alert_id"]] = Incident(
                primary=key,
                alert_id=row["alert_id"],
                started=row["starts_at"],
                detector=str(row["payload"].get("detector", "two_proportion_z")),
                announced=True,
                # Recorded before this state was kept: it was notified then.
                notified=state is None or row["alert_id"] in notified,
            )
        for stream, state in saved.items():
            if state is None:
                continue
            run = self._streams[stream] = StreamRun(Sliding(self.settings.window))
            run.evaluated = state.evaluated
            self._marks.restore(stream, state.watermark, state.extra.get("partitions", {}))
            for (scope_kind, scope), scope_state in state.scopes.items():
                key = (stream, scope_kind, scope)  # type: ignore[assignment]
                detector = run.detectors[key] = ShiftDetector(self.settings.shift)
                detector.restore(scope_state.get("shift", {}))
                if "drift" in scope_state:
                    run.drift[key] = DriftDetector(self.settings.drift)
                    run.drift[key].restore(scope_state["drift"])
                member_of = by_id.get(scope_state.get("incident") or "")
                if member_of is not None and detector.open_since is not None:
                    member_of.members.add(key)
        for incident in by_id.values():
            if saved.get(incident.primary[0]) is None:
                # No saved state (recorded by an older version, or the process died before
                # its first save): resumed once the first bucket to evaluate is known.
                self._unsaved.append(incident)
            else:
                self._resume(incident)
        log.info(
            "alert evaluator leading",
            extra={
                "resumed_alerts": [row["alert_id"] for row in rows],
                "evaluated": {
                    s: r.evaluated.isoformat() if r.evaluated else None
                    for s, r in self._streams.items()
                },
            },
        )

    def _resume(self, incident: Incident) -> None:
        """Go on with an episode recorded as firing."""
        if not incident.members:
            # Its scopes' state was not saved: the primary goes on.
            incident.members.add(incident.primary)
            run = self._streams.setdefault(
                incident.primary[0], StreamRun(Sliding(self.settings.window))
            )
            detector = run.detectors.setdefault(
                incident.primary, ShiftDetector(self.settings.shift)
            )
            if detector.open_since is None:
                detector.resume(incident.started)
        for key in incident.members:
            self._incidents[key] = incident
            self._metrics.shift_active.labels(key[1], key[2], key[0]).set(1)

    def _save(self, stream: str, now: datetime) -> None:
        """Save ``stream``'s progress and detector state (one transaction)."""
        run = self._streams[stream]
        incidents = {id(i): i for i in self._incidents.values() if i.primary[0] == stream}
        scopes: dict[tuple[str, str], dict[str, object]] = {}
        for key, detector in run.detectors.items():
            state: dict[str, object] = {"shift": detector.state()}
            if key in run.drift:
                state["drift"] = run.drift[key].state()
            if key in self._incidents:
                state["incident"] = self._incidents[key].alert_id
            scopes[(key[1], key[2])] = state
        for key, drift in run.drift.items():
            scopes.setdefault((key[1], key[2]), {"drift": drift.state()})
        extra = {
            "partitions": self._marks.saved(stream),
            "notified": sorted(i.alert_id for i in incidents.values() if i.notified),
        }
        self._state.save(stream, run.evaluated, self._marks.marks.get(stream), extra, scopes, now)

    def _step_down(self) -> None:
        # Another replica evaluates now: our gauges would keep an episode "active" forever.
        self._leading = False
        self._streams.clear()
        self._incidents.clear()
        self._unsaved.clear()
        self._marks = Watermarks(
            self._engine, self.settings.window.lateness_s, self.settings.idle_s
        )
        for gauge in (
            self._metrics.shift_active,
            self._metrics.shift_statistic,
            self._metrics.negative_share,
        ):
            gauge.clear()


def first_event(engine: Engine, stream: str) -> datetime | None:
    """Event time of the stream's oldest stored event (an indexed min)."""
    e = events_table
    stmt = sa.select(sa.func.min(e.c.event_time)).where(e.c.kind == stream)
    with engine.connect() as conn:
        first: datetime | None = conn.execute(stmt).scalar_one()
    return first
