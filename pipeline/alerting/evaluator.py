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

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.detectors import (
    Opened,
    Resolved,
    ShiftDetector,
    ShiftSettings,
)
from pipeline.alerting.model import AlertEvent, Evidence, RisingWord
from pipeline.alerting.notify import Notifier
from pipeline.alerting.windows import Comparison, ScopeKey, Window, read_buckets
from pipeline.errors import StoreError
from pipeline.metrics import Metrics
from pipeline.store.alerts import AlertTable
from pipeline.store.lease import Lease
from pipeline.store.tables import events_table

log = logging.getLogger(__name__)

LEASE = "alert-evaluator"


@dataclass(frozen=True)
class AlertSettings:
    """How the evaluator windows, tests and reports."""

    window: Window = field(default_factory=Window)
    shift: ShiftSettings = field(default_factory=ShiftSettings)
    interval_s: float = 15.0
    lease_ttl_s: float = 60.0
    evidence_messages: int = 5
    rising_words: int = 5
    #: Baseline rows sampled for the rising-words comparison (newest first).
    baseline_sample: int = 2000


class Evaluator:
    """Evaluates every scope; emits alert events to the table, the notifier and ``on_event``."""

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
        buckets = read_buckets(
            self._engine,
            window.baseline_start(now),
            now + timedelta(seconds=window.bucket_s),
            window.bucket_s,
        )
        comparisons = window.compare(buckets, now)
        for key in self._detectors:
            comparisons.setdefault(key, Comparison())  # a silent scope must still resolve
        events: list[AlertEvent] = []
        for key, comparison in sorted(comparisons.items()):
            detector = self._detectors.setdefault(key, ShiftDetector(self.settings.shift))
            current, baseline = comparison.current, comparison.baseline
            change = detector.evaluate(
                now, current.negative, current.n, baseline.negative, baseline.n
            )
            self._gauges(key, comparison, detector)
            if change is not None:
                event = self._emit(key, change, comparison, now)
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

    def _resume_open_episodes(self) -> None:
        for row in self._table.rows(status="firing", limit=10_000):
            key: ScopeKey = (row["stream"], row["scope_kind"], row["scope"])
            detector = self._detectors.setdefault(key, ShiftDetector(self.settings.shift))
            detector.resume(row["starts_at"])
            self._metrics.shift_active.labels(row["scope_kind"], row["scope"], row["stream"]).set(1)

    def _step_down(self) -> None:
        # Another replica evaluates now: our gauges would keep an episode "active" forever.
        self._leading = False
        self._detectors.clear()
        for gauge in (
            self._metrics.shift_active,
            self._metrics.shift_statistic,
            self._metrics.negative_share,
        ):
            gauge.clear()

    def _emit(
        self, key: ScopeKey, change: Opened | Resolved, comparison: Comparison, now: datetime
    ) -> AlertEvent | None:
        stream, scope_kind, scope = key
        started = change.at if isinstance(change, Opened) else change.started
        alert_id = f"{stream}:{scope_kind}:{scope}:{started.isoformat()}"
        e = change.evidence
        where = f"{scope_kind} {scope!r}" if scope_kind != "overall" else "overall"
        status = "firing" if isinstance(change, Opened) else "resolved"
        summary = (
            f"{stream} {where}: negative share {e.current_share:.0%} over {e.current_n} messages "
            f"vs {e.baseline_share:.0%} over {e.baseline_n} in the baseline"
        )
        evidence, rising = self._evidence(key, now) if status == "firing" else ([], [])
        event = AlertEvent(
            alert_id=alert_id,
            status=status,
            scope_kind=scope_kind,
            scope=scope,
            stream="chat" if stream == "chat" else "news",
            severity="critical" if e.z >= 2 * self.settings.shift.z_open else "warning",
            starts_at=started,
            ends_at=change.at if isinstance(change, Resolved) else None,
            summary=summary,
            baseline_share=e.baseline_share,
            current_share=e.current_share,
            baseline_n=e.baseline_n,
            current_n=e.current_n,
            statistic=e.z,
            detector="two_proportion_z",
            evidence=evidence,
            rising_words=rising,
        )
        payload = event.model_dump_json()
        if status == "firing":
            fresh = self._table.fire(
                {
                    "alert_id": alert_id,
                    "scope_kind": scope_kind,
                    "scope": scope,
                    "stream": stream,
                    "severity": event.severity,
                    "starts_at": started,
                    "statistic": e.z,
                    "payload": payload,
                },
                now,
            )
        else:
            fresh = self._table.resolve(alert_id, change.at, payload, now)
        if not fresh:
            return None  # another evaluator recorded this change already
        self._metrics.alerts.labels(status).inc()
        log.warning("alert", extra={"alert_id": alert_id, "status": status, "z": round(e.z, 2)})
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
        self, key: ScopeKey, now: datetime
    ) -> tuple[list[Evidence], list[RisingWord]]:
        """The window's most negative messages, and the words whose attention mass rose."""
        window = self.settings.window
        current_start = window.current_start(now)
        table = events_table
        scope_filter = _scope_filter(key)
        with self._engine.connect() as conn:
            worst = conn.execute(
                sa.select(table.c.text, table.c.sentiment_score, table.c.sentiment_attention)
                .where(scope_filter, table.c.event_time >= current_start)
                .where(table.c.sentiment_label == "negative")
                .order_by(table.c.sentiment_score.desc())
                .limit(self.settings.evidence_messages)
            ).all()
            # What people are suddenly talking about: attention mass of the whole window
            # against the baseline's (the newest ``baseline_sample`` messages).
            current = conn.execute(
                sa.select(table.c.sentiment_attention)
                .where(scope_filter, table.c.event_time >= current_start)
                .order_by(table.c.event_time.desc())
                .limit(self.settings.baseline_sample)
            ).all()
            baseline = conn.execute(
                sa.select(table.c.sentiment_attention)
                .where(scope_filter, table.c.event_time < current_start)
                .where(table.c.event_time >= window.baseline_start(now))
                .order_by(table.c.event_time.desc())
                .limit(self.settings.baseline_sample)
            ).all()
        evidence = [
            Evidence(
                text_excerpt=text[:160],
                sentiment_score=float(score),
                top_words=_top_words(attention, 3),
            )
            for text, score, attention in worst
        ]
        current_mass = _mass(row[0] for row in current)
        baseline_mass = _mass(row[0] for row in baseline)
        rising = sorted(
            (
                RisingWord(word=w, baseline=baseline_mass.get(w, 0.0), current=share)
                for w, share in current_mass.items()
            ),
            key=lambda r: r.baseline - r.current,
        )[: self.settings.rising_words]
        return evidence, [r for r in rising if r.current > r.baseline]


def _scope_filter(key: ScopeKey) -> sa.ColumnElement[bool]:
    stream, scope_kind, scope = key
    table = events_table
    clause = table.c.kind == stream
    if scope_kind == "channel":
        return sa.and_(clause, table.c.channel == scope)
    if scope_kind == "intent":
        return sa.and_(clause, table.c.intent_label == scope, table.c.role == "customer")
    if scope_kind == "news_source":
        return sa.and_(clause, table.c.news_source == scope)
    if scope_kind == "ticker":
        tickers = sa.type_coerce(table.c.tickers, sa.Text)
        return sa.and_(clause, tickers.contains(json.dumps(scope), autoescape=True))
    return clause


def _words(attention: Any) -> list[tuple[str, float]]:
    if not isinstance(attention, list):
        return []
    return [
        (str(w["word"]).strip(".,!?;:\"'()").lower(), float(w["weight"]))
        for w in attention
        if isinstance(w, dict) and "word" in w and "weight" in w
    ]


def _top_words(attention: Any, n: int) -> list[str]:
    return [w for w, _ in sorted(_words(attention), key=lambda p: -p[1])[:n] if w]


def _mass(attentions: Iterable[Any]) -> dict[str, float]:
    """Each word's share of the total attention mass of ``attentions``."""
    mass: dict[str, float] = {}
    for attention in attentions:
        for word, weight in _words(attention):
            if word:
                mass[word] = mass.get(word, 0.0) + weight
    total = sum(mass.values()) or 1.0
    return {word: value / total for word, value in mass.items()}
