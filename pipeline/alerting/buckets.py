"""The evaluator's buckets between evaluations: closed ones kept, open ones read again."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.alerting.windows import Bucket, Window, align, read_buckets
from pipeline.store.tables import events_table


class BucketCache:
    """The window's buckets, with the closed ones kept between evaluations.

    Each evaluation reads only the buckets that may still change, one short range scan
    instead of the whole baseline, plus one indexed ``count(*)`` over the closed range:
    if that differs from the cached buckets' total, events arrived late into closed
    buckets (a consumer catching up on a backlog) or were purged, and the whole window
    is read again.  ``bench/alert_evaluation.py`` measures the difference; memory is one
    small object per scope and closed bucket of the baseline.
    """

    def __init__(self, window: Window) -> None:
        self._window = window
        self._closed: list[Bucket] = []
        self._final_until: datetime | None = None

    def read(self, engine: Engine, now: datetime) -> list[Bucket]:
        """Every bucket of the baseline and the current window at ``now``."""
        w = self._window
        since = align(w.baseline_start(now), w.bucket_s)
        self._closed = [b for b in self._closed if b.start >= since]
        start = since
        if self._final_until is not None and self._final_until > since:
            cached = sum(b.n for b in self._closed if b.scope_kind == "overall")
            if _count_events(engine, since, self._final_until) == cached:
                start = self._final_until
            else:
                self._closed = []
        fresh = read_buckets(engine, start, now + timedelta(seconds=w.bucket_s), w.bucket_s)
        final_until = align(now - timedelta(seconds=w.bucket_s + w.lateness_s), w.bucket_s)
        final_until += timedelta(seconds=w.bucket_s)
        self._closed += [b for b in fresh if b.start < final_until]
        self._final_until = final_until
        return self._closed + [b for b in fresh if b.start >= final_until]


def _count_events(engine: Engine, since: datetime, until: datetime) -> int:
    e = events_table
    stmt = sa.select(sa.func.count()).where(e.c.event_time >= since, e.c.event_time < until)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
