"""Counts over time for the chart pages, summed by the database, and the alert episodes.

A window's events are counted per time bucket, group and sentiment label in one
``GROUP BY`` (the event-time index restricts the scan to the window), so a chart costs one
query whatever the number of events.  Groups are a column (``channel``, ``intent_label``,
``news_source``) or a ticker: the database groups by the ``tickers`` JSON text (few
distinct lists) and the lists are split here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboards.data.filters import EventFilter, Window
from dashboards.data.queries import conditions
from pipeline.alerting.windows import epoch_seconds
from pipeline.store.alerts import alerts_table
from pipeline.store.engine import store_errors
from pipeline.store.tables import events_table

#: What a trend can be split by, and the column behind each (``ticker``: the JSON list).
GROUPINGS = {
    "channel": events_table.c.channel,
    "intent": events_table.c.intent_label,
    "source": events_table.c.news_source,
    "ticker": events_table.c.tickers,
}
#: Bucket lengths (seconds) a chart may use; the first giving at most MAX_BUCKETS wins.
BUCKET_SECONDS = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 200
#: Most groups drawn as their own line; the rest are left out (the page says so).
MAX_GROUPS = 8

_T = events_table


def bucket_seconds(window: Window) -> int:
    """The shortest bucket that splits ``window`` into at most :data:`MAX_BUCKETS`."""
    for seconds in BUCKET_SECONDS:
        if window.seconds / seconds <= MAX_BUCKETS:
            return seconds
    return BUCKET_SECONDS[-1]


def data_span(engine: Engine, f: EventFilter) -> tuple[datetime, datetime] | None:
    """First and last event time of the events ``f`` selects (``None``: there are none)."""
    stmt = sa.select(sa.func.min(_T.c.event_time), sa.func.max(_T.c.event_time)).where(
        *conditions(f)
    )
    with store_errors("reading the data's time range"), engine.connect() as conn:
        first, last = conn.execute(stmt).one()
    if first is None or last is None:
        return None
    return first, last


@dataclass(frozen=True)
class Count:
    """Events of one bucket, group and sentiment label (``group`` ``None``: no value)."""

    bucket: datetime
    group: str | None
    label: str
    n: int


@dataclass(frozen=True)
class Episode:
    """An alert episode to draw on a chart."""

    alert_id: str
    scope_kind: str
    scope: str
    stream: str
    status: str
    starts_at: datetime
    ends_at: datetime | None


def sentiment_counts(
    engine: Engine, f: EventFilter, window: Window, bucket_s: int, by: str | None = None
) -> list[Count]:
    """Events matching ``f`` in ``window`` per bucket, group (``by``) and sentiment label.

    ``by`` is a key of :data:`GROUPINGS` or ``None`` (every event in group ``"all"``).
    ``group`` is the column's stored value, ``None`` for events without one (news have
    no channel) and the JSON list for ``ticker``; :func:`overall` and :func:`by_group`
    turn one result into both charts, so the window is scanned once.
    """
    epoch = epoch_seconds(_T.c.event_time, engine.dialect.name)
    group: Any = GROUPINGS[by] if by is not None else sa.literal("all")
    # The bucket is computed in a subquery and grouped by its name: PostgreSQL would not
    # see two copies of an expression with bound values as the same GROUP BY key.
    inner = (
        sa.select(
            (epoch // bucket_s * bucket_s).label("bucket"),
            sa.type_coerce(group, sa.Text).label("grp"),
            _T.c.sentiment_label.label("label"),
        )
        .where(*conditions(f), _T.c.event_time >= window.start, _T.c.event_time < window.end)
        .subquery()
    )
    stmt = (
        sa.select(inner.c.bucket, inner.c.grp, inner.c.label, sa.func.count().label("n"))
        .group_by(inner.c.bucket, inner.c.grp, inner.c.label)
        .order_by(inner.c.bucket)
    )
    with store_errors("counting events"), engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        Count(datetime.fromtimestamp(int(bucket), UTC), grp, label, int(n))
        for bucket, grp, label, n in rows
    ]


def overall(counts: Iterable[Count]) -> list[Count]:
    """``counts`` summed over groups (group ``"all"``), each event counted once."""
    totals: Counter[tuple[datetime, str]] = Counter()
    for c in counts:
        totals[(c.bucket, c.label)] += c.n
    return [Count(bucket, "all", label, n) for (bucket, label), n in sorted(totals.items())]


def by_group(counts: Iterable[Count], by: str) -> list[Count]:
    """``counts`` per group value: events without one left out, ticker lists split."""
    out: list[Count] = []
    for c in counts:
        if c.group is None:
            continue
        if by == "ticker":
            out.extend(Count(c.bucket, t, c.label, c.n) for t in json.loads(c.group))
        else:
            out.append(c)
    return out


def top_groups(counts: list[Count], n: int = MAX_GROUPS) -> list[str]:
    """The ``n`` groups with the most events, most first (ties by name)."""
    totals: Counter[str] = Counter()
    for c in counts:
        if c.group is not None:
            totals[c.group] += c.n
    return [g for g, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def intent_mix(engine: Engine, f: EventFilter, window: Window) -> list[tuple[str, int]]:
    """Customer turns per intent label in ``window`` (most first)."""
    stmt = (
        sa.select(_T.c.intent_label, sa.func.count())
        .where(*conditions(f), _T.c.event_time >= window.start, _T.c.event_time < window.end)
        .where(_T.c.intent_label.is_not(None))
        .group_by(_T.c.intent_label)
    )
    with store_errors("counting intents"), engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return sorted(((str(k), int(n)) for k, n in rows), key=lambda kv: (-kv[1], kv[0]))


def episodes(engine: Engine, window: Window, stream: str | None = None) -> list[Episode]:
    """Alert episodes that overlap ``window`` (of ``stream`` if given), oldest first."""
    a = alerts_table
    stmt = (
        sa.select(
            a.c.alert_id,
            a.c.scope_kind,
            a.c.scope,
            a.c.stream,
            a.c.status,
            a.c.starts_at,
            a.c.ends_at,
        )
        .where(a.c.starts_at < window.end)
        .where(sa.or_(a.c.ends_at.is_(None), a.c.ends_at >= window.start))
        .order_by(a.c.starts_at)
        .limit(100)
    )
    if stream is not None:
        stmt = stmt.where(a.c.stream == stream)
    with store_errors("reading alerts"), engine.connect() as conn:
        return [Episode(*row) for row in conn.execute(stmt)]
