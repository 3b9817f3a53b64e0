"""Per-stream watermarks read from the store: the event time up to which it is complete.

As in Flink's ``WatermarkStrategy.forBoundedOutOfOrderness(...).withIdleness(...)``: each
source partition's watermark is its newest event time less the allowed lateness; a stream's
is the smallest over its *active* partitions (so a consumer that reads one partition ahead
of another does not close buckets the slower one still fills); a partition that stored
nothing for ``idle_s`` of processing time is idle and does not hold the stream back.  When
every partition of a stream is idle, the stream's watermark advances by processing time
(from the newest event, after ``idle_s``), so an open episode on a stream that went quiet
still resolves.  Watermarks never go back.

Read from the store rather than from the consumer: every replica stores some partitions,
the store sees them all, and a new leader finds them there.  Each read scans only events
at or after the slowest active partition's newest event (an indexed range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.windows import align
from pipeline.store.engine import store_errors
from pipeline.store.tables import events_table


@dataclass
class Partition:
    """One source partition's newest event time and when (processing time) it was stored."""

    newest: datetime
    stored: datetime


class Watermarks:
    """Tracks every stream's partitions; :meth:`update` returns each stream's watermark."""

    def __init__(self, engine: Engine, lateness_s: float, idle_s: float) -> None:
        if idle_s <= 0 or lateness_s < 0:
            msg = f"idle_s must be > 0 and lateness_s >= 0, got {idle_s}, {lateness_s}"
            raise ValueError(msg)
        self._engine = engine
        self._lateness = timedelta(seconds=lateness_s)
        self._idle = timedelta(seconds=idle_s)
        #: stream -> "topic:partition" -> Partition
        self.partitions: dict[str, dict[str, Partition]] = {}
        self.marks: dict[str, datetime] = {}

    def restore(self, stream: str, mark: datetime | None, saved: dict[str, Any]) -> None:
        """Take back a stream's saved watermark and partitions (see :meth:`saved`)."""
        self.partitions[stream] = {
            name: Partition(datetime.fromisoformat(p[0]), datetime.fromisoformat(p[1]))
            for name, p in saved.items()
        }
        if mark is not None:
            self.marks[stream] = mark

    def saved(self, stream: str) -> dict[str, Any]:
        """A stream's partitions as JSON-able values."""
        return {
            name: [p.newest.isoformat(), p.stored.isoformat()]
            for name, p in self.partitions.get(stream, {}).items()
        }

    def _read(self, now: datetime) -> None:
        e = events_table
        since: datetime | None = None
        known = [p for parts in self.partitions.values() for p in parts.values()]
        active = [p.newest for p in known if now - p.stored < self._idle]
        if known:
            since = min(active) if active else max(p.newest for p in known)
        stmt = sa.select(
            e.c.kind,
            e.c.source_topic,
            e.c.source_partition,
            sa.func.max(e.c.event_time),
            sa.func.max(e.c.processed_time),
        ).group_by(e.c.kind, e.c.source_topic, e.c.source_partition)
        if since is not None:
            stmt = stmt.where(e.c.event_time >= since)
        with store_errors("reading watermarks"), self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        for kind, topic, partition, newest, stored in rows:
            parts = self.partitions.setdefault(str(kind), {})
            name = f"{topic}:{partition}"
            old = parts.get(name)
            newest = _aware(newest)
            stored = min(_aware(stored), now)  # another replica's clock may run ahead
            if old is None or newest > old.newest:
                parts[name] = Partition(newest, max(stored, old.stored) if old else stored)
            elif stored > old.stored:
                old.stored = stored

    def update(self, now: datetime) -> dict[str, datetime]:
        """Read what the store holds now; every stream's watermark (processing time ``now``)."""
        self._read(now)
        for stream, parts in self.partitions.items():
            if not parts:
                continue
            active = [p.newest for p in parts.values() if now - p.stored < self._idle]
            if active:
                mark = min(active) - self._lateness
            else:
                newest = max(parts.values(), key=lambda p: p.newest)
                last = max(p.stored for p in parts.values())
                # Idle: event time goes on at the pace of processing time, from the newest
                # event, once the stream has been quiet for idle_s; never past the wall clock.
                quiet = now - last - self._idle
                mark = min(newest.newest + max(quiet, timedelta(0)), now) - self._lateness
            previous = self.marks.get(stream)
            self.marks[stream] = max(mark, previous) if previous is not None else mark
        return dict(self.marks)

    def newest(self, stream: str) -> datetime | None:
        """The newest event time stored for ``stream`` (``None`` if none)."""
        parts = self.partitions.get(stream)
        return max(p.newest for p in parts.values()) if parts else None

    def final(self, bucket_s: int) -> dict[str, datetime]:
        """The watermarks at the end of the input: every stream complete up to its newest event.

        For ``run --idle-exit``: nothing more is coming, so every bucket holding an event
        is closed (the newest event's bucket included).
        """
        out: dict[str, datetime] = {}
        for stream, parts in self.partitions.items():
            if parts:
                newest = max(p.newest for p in parts.values())
                mark = align(newest, bucket_s) + timedelta(seconds=bucket_s)
                previous = self.marks.get(stream)
                out[stream] = max(mark, previous) if previous is not None else mark
        self.marks.update(out)
        return out


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        msg = "the store returned a naive time; UTCDateTime columns must be timezone-aware"
        raise ValueError(msg)
    return value
