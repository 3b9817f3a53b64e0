"""Event-time bucket aggregates per scope, read from the store, and the windows over them.

:func:`read_buckets` runs one ``GROUP BY`` query per scope kind over ``events`` (an
indexed range scan on ``event_time``) and returns fixed-size event-time buckets
(:class:`Bucket`); the same SQL runs on SQLite and PostgreSQL.  :class:`Window` sums
buckets into the current window and the trailing baseline it is compared with, and
says which buckets are final (see its docstring for how open buckets are used).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from pipeline.store.tables import events_table

ScopeKind = Literal["overall", "channel", "intent", "ticker", "news_source"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("overall", "channel", "intent", "ticker", "news_source")
#: One scope's identity: ``(stream, scope_kind, scope)``, e.g. ``("chat", "intent", "refund")``.
ScopeKey = tuple[str, ScopeKind, str]


@dataclass(frozen=True)
class Bucket:
    """Counts of one scope's events whose event time falls in ``[start, start + bucket_s)``.

    ``scope`` is ``""`` for ``overall``; ``stream`` is the event kind (``chat``/``news``).
    ``confidence_sum`` and ``n_intent`` cover the events that have an intent score
    (customer chat turns); ``unknown`` counts events whose intent label is ``unknown``.
    """

    scope_kind: ScopeKind
    scope: str
    stream: str
    start: datetime
    n: int
    negative: int
    neutral: int
    positive: int
    score_sum: float
    confidence_sum: float
    n_intent: int
    unknown: int

    @property
    def key(self) -> ScopeKey:
        """The scope this bucket belongs to."""
        return (self.stream, self.scope_kind, self.scope)


def epoch_seconds(column: sa.ColumnElement[datetime], dialect: str) -> sa.ColumnElement[int]:
    """Whole seconds since 1970 (UTC) of a ``UTCDateTime`` column, in SQL."""
    if dialect == "sqlite":
        # UTCDateTime stores naive UTC text ("2025-03-01 12:00:00.123456") in SQLite,
        # which strftime reads as UTC.  The fraction is cut off first: SQLite parses it to
        # whole milliseconds, rounding, so 12:02:59.9999 would land in minute 12:03.
        return sa.cast(sa.func.strftime("%s", sa.func.substr(column, 1, 19)), sa.BigInteger)
    if dialect == "postgresql":
        # timestamptz: extract gives the instant's epoch whatever the session time zone.
        return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
    msg = f"read_buckets supports SQLite and PostgreSQL, not {dialect!r}"
    raise ValueError(msg)


def _scope_rows(
    scope_kind: ScopeKind, bucket: sa.ColumnElement[int], dialect: str
) -> sa.Select[Any]:
    """One row per (event, scope value) of ``scope_kind``, with its bucket number."""
    e = events_table
    measures = (
        e.c.sentiment_label,
        e.c.sentiment_score,
        e.c.intent_label,
        e.c.intent_score,
    )
    scope: sa.ColumnElement[str]
    if scope_kind == "ticker":
        if dialect == "sqlite":
            items = sa.func.json_each(e.c.tickers).table_valued("value").alias("ticker")
        else:
            items = (
                sa.func.jsonb_array_elements_text(sa.cast(e.c.tickers, JSONB))
                .table_valued("value")
                .alias("ticker")
            )
        # DISTINCT: an event listing a ticker twice counts once for it.
        return (
            sa.select(
                e.c.input_id,
                e.c.kind.label("stream"),
                sa.cast(items.c.value, sa.Text).label("scope"),
                bucket.label("bucket"),
                *measures,
            )
            .select_from(e)
            .join(items, sa.true())
            .where(customer_turns())
            .distinct()
        )
    if scope_kind == "overall":
        scope = sa.literal("", sa.Text)
    elif scope_kind == "channel":
        scope = e.c.channel
    elif scope_kind == "intent":
        scope = e.c.intent_label
    else:
        scope = e.c.news_source
    stmt = sa.select(
        e.c.kind.label("stream"), scope.label("scope"), bucket.label("bucket"), *measures
    )
    # Chats count as customer turns only, in every scope: agent turns are the agents'
    # wording, not the customers' mood, and would dilute a customer shift.
    stmt = stmt.where(customer_turns())
    if scope_kind == "intent":
        # Agent turns carry no intent; a customer turn without one has no scope either.
        stmt = stmt.where(e.c.kind == "chat", e.c.intent_label.is_not(None))
    elif scope_kind != "overall":
        stmt = stmt.where(scope.is_not(None))
    return stmt


def customer_turns() -> sa.ColumnElement[bool]:
    """SQL condition: news articles, and chat turns written by the customer."""
    e = events_table
    return sa.or_(e.c.kind != "chat", e.c.role == "customer")


def _bucket_query(
    scope_kind: ScopeKind,
    since: datetime,
    until: datetime,
    bucket_s: int,
    dialect: str,
    stream: str | None = None,
) -> sa.Select[Any]:
    e = events_table
    bucket = epoch_seconds(e.c.event_time, dialect) // sa.literal(bucket_s, sa.BigInteger)
    selected = _scope_rows(scope_kind, bucket, dialect).where(
        e.c.event_time >= since, e.c.event_time < until
    )
    if stream is not None:
        selected = selected.where(e.c.kind == stream)
    rows = selected.subquery("rows")

    def count_label(label: str) -> sa.ColumnElement[int]:
        return sa.func.sum(sa.case((rows.c.sentiment_label == label, 1), else_=0))

    # Grouping the subquery's plain columns, not the bucket expression itself: PostgreSQL
    # would see the expression's bound parameter twice and refuse the GROUP BY.
    return sa.select(
        rows.c.stream,
        rows.c.scope,
        rows.c.bucket,
        sa.func.count().label("n"),
        count_label("negative").label("negative"),
        count_label("neutral").label("neutral"),
        count_label("positive").label("positive"),
        sa.func.sum(rows.c.sentiment_score).label("score_sum"),
        sa.func.coalesce(sa.func.sum(rows.c.intent_score), 0.0).label("confidence_sum"),
        sa.func.count(rows.c.intent_score).label("n_intent"),
        sa.func.sum(sa.case((rows.c.intent_label == "unknown", 1), else_=0)).label("unknown"),
    ).group_by(rows.c.stream, rows.c.scope, rows.c.bucket)


def read_buckets(
    engine: Engine,
    since: datetime,
    until: datetime,
    bucket_s: int = 60,
    scope_kinds: Iterable[ScopeKind] = SCOPE_KINDS,
    stream: str | None = None,
) -> list[Bucket]:
    """Buckets of every scope for events with ``since <= event_time < until``.

    ``since`` is rounded down to a bucket boundary, so the first bucket is whole; the
    last one is partial when ``until`` is not on a boundary.  Buckets without events are
    absent.  Chats count as customer turns only, in every scope (agent turns would
    dilute a customer shift); an event counts once for each distinct ticker
    it lists.  ``stream`` (``chat`` or ``news``) limits the read to one stream.  Times
    must be timezone-aware; the result is sorted by scope, then start.
    """
    if bucket_s <= 0:
        msg = f"bucket_s must be positive, got {bucket_s}"
        raise ValueError(msg)
    since = align(since, bucket_s)
    dialect = engine.dialect.name
    buckets: list[Bucket] = []
    with engine.connect() as conn:
        for scope_kind in scope_kinds:
            query = _bucket_query(scope_kind, since, until, bucket_s, dialect, stream)
            result = conn.execute(query)
            buckets.extend(
                Bucket(
                    scope_kind=scope_kind,
                    scope=str(row.scope),
                    stream=str(row.stream),
                    start=datetime.fromtimestamp(int(row.bucket) * bucket_s, UTC),
                    n=int(row.n),
                    negative=int(row.negative),
                    neutral=int(row.neutral),
                    positive=int(row.positive),
                    score_sum=float(row.score_sum),
                    confidence_sum=float(row.confidence_sum),
                    n_intent=int(row.n_intent),
                    unknown=int(row.unknown),
                )
                for row in result
            )
    buckets.sort(key=lambda b: (b.stream, b.scope_kind, b.scope, b.start))
    return buckets


def scope_filter(key: ScopeKey) -> sa.ColumnElement[bool]:
    """SQL condition on ``events`` for the events of one scope (as :func:`read_buckets` counts)."""
    stream, scope_kind, scope = key
    e = events_table
    clause = sa.and_(e.c.kind == stream, customer_turns())
    if scope_kind == "channel":
        return sa.and_(clause, e.c.channel == scope)
    if scope_kind == "intent":
        return sa.and_(clause, e.c.intent_label == scope, e.c.role == "customer")
    if scope_kind == "news_source":
        return sa.and_(clause, e.c.news_source == scope)
    if scope_kind == "ticker":
        tickers = sa.type_coerce(e.c.tickers, sa.Text)
        return sa.and_(clause, tickers.contains(json.dumps(scope), autoescape=True))
    return clause


@dataclass(frozen=True)
class Counts:
    """Negative and total counts of a current window and its baseline."""

    current_negative: int
    current_n: int
    baseline_negative: int
    baseline_n: int


def residual_counts(
    engine: Engine, key: ScopeKey, without: ScopeKey, window: Window, now: datetime
) -> Counts:
    """``key``'s counts over ``window`` at ``now``, leaving out the events of scope ``without``.

    What is left of a scope's shift once another scope's messages are taken out: if
    nothing is, the other scope explains it.  Same window bounds as :meth:`Window.compare`.
    """
    e = events_table
    current_start = window.current_start(now)
    end = align(now, window.bucket_s) + timedelta(seconds=window.bucket_s)
    # CASE, not NOT(...): NOT of a NULL comparison (an agent turn's intent) is NULL, not true.
    outside = sa.case((scope_filter(without), 1), else_=0) == 0
    current = e.c.event_time >= current_start
    negative = e.c.sentiment_label == "negative"

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    stmt = sa.select(
        count(sa.and_(current, negative)),
        count(current),
        count(sa.and_(sa.not_(current), negative)),
        count(sa.not_(current)),
    ).where(
        scope_filter(key),
        outside,
        e.c.event_time >= window.baseline_start(now),
        e.c.event_time < end,
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).one()
    return Counts(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def align(when: datetime, bucket_s: int) -> datetime:
    """The start of the bucket that holds ``when`` (timezone-aware UTC)."""
    if when.tzinfo is None:
        msg = f"naive datetime {when.isoformat()} given; windows need timezone-aware times"
        raise ValueError(msg)
    epoch = int(when.timestamp() // bucket_s) * bucket_s
    return datetime.fromtimestamp(epoch, UTC)


@dataclass
class Totals:
    """Sums of buckets: the same counts as :class:`Bucket`, over a span of time."""

    n: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    score_sum: float = 0.0
    confidence_sum: float = 0.0
    n_intent: int = 0
    unknown: int = 0
    buckets: int = 0

    def add(self, bucket: Bucket) -> None:
        """Add one bucket's counts."""
        self.n += bucket.n
        self.negative += bucket.negative
        self.neutral += bucket.neutral
        self.positive += bucket.positive
        self.score_sum += bucket.score_sum
        self.confidence_sum += bucket.confidence_sum
        self.n_intent += bucket.n_intent
        self.unknown += bucket.unknown
        self.buckets += 1

    def remove(self, bucket: Bucket) -> None:
        """Take one bucket's counts out again (a bucket leaving a sliding window)."""
        self.n -= bucket.n
        self.negative -= bucket.negative
        self.neutral -= bucket.neutral
        self.positive -= bucket.positive
        self.score_sum -= bucket.score_sum
        self.confidence_sum -= bucket.confidence_sum
        self.n_intent -= bucket.n_intent
        self.unknown -= bucket.unknown
        self.buckets -= 1

    @property
    def negative_share(self) -> float:
        """Share of negative events (0 when empty)."""
        return self.negative / self.n if self.n else 0.0

    @property
    def mean_score(self) -> float:
        """Mean sentiment score (0 when empty)."""
        return self.score_sum / self.n if self.n else 0.0

    @property
    def mean_confidence(self) -> float:
        """Mean intent score over events that have one (0 when none)."""
        return self.confidence_sum / self.n_intent if self.n_intent else 0.0

    @property
    def unknown_share(self) -> float:
        """Share of events with intent ``unknown`` among those with an intent."""
        return self.unknown / self.n_intent if self.n_intent else 0.0


@dataclass
class Comparison:
    """One scope's current window and the baseline it is compared with."""

    current: Totals = field(default_factory=Totals)
    baseline: Totals = field(default_factory=Totals)


@dataclass(frozen=True)
class Window:
    """How buckets are summed into a current window and a trailing baseline at time ``now``.

    The current window is the ``current_s / bucket_s`` most recent buckets, the last
    being the one that holds ``now`` (still filling); the baseline is the
    ``baseline_s`` before it, so the two never overlap.  A bucket is *open* until
    ``lateness_s`` after its end: late events may still land in it.  Open buckets
    are counted in the current window anyway (their share is an unbiased estimate
    from the events that have arrived, and waiting for them to close would delay
    every alert by ``lateness_s``), never in the baseline (``current_s`` must
    be at least ``lateness_s``, so baseline buckets are always final), and never fed
    to sequential detectors, which see each bucket once: :meth:`closed`.
    """

    current_s: int = 900
    baseline_s: int = 86_400
    lateness_s: int = 120
    bucket_s: int = 60

    def __post_init__(self) -> None:
        for name in ("current_s", "baseline_s", "bucket_s"):
            value = getattr(self, name)
            if value <= 0 or value % self.bucket_s:
                msg = f"{name} must be a positive multiple of bucket_s ({self.bucket_s}): {value}"
                raise ValueError(msg)
        if not 0 <= self.lateness_s <= self.current_s:
            msg = f"lateness_s must be in [0, current_s], got {self.lateness_s}"
            raise ValueError(msg)

    def current_start(self, now: datetime) -> datetime:
        """Start of the current window's first bucket."""
        return align(now, self.bucket_s) - timedelta(seconds=self.current_s - self.bucket_s)

    def baseline_start(self, now: datetime) -> datetime:
        """Start of the baseline's first bucket (what to pass to :func:`read_buckets`)."""
        return self.current_start(now) - timedelta(seconds=self.baseline_s)

    def is_closed(self, bucket: Bucket, now: datetime) -> bool:
        """Whether no late event can still land in ``bucket``."""
        end = bucket.start + timedelta(seconds=self.bucket_s + self.lateness_s)
        return end <= now

    def compare(self, buckets: Iterable[Bucket], now: datetime) -> dict[ScopeKey, Comparison]:
        """Sum each scope's buckets into its current window and baseline.

        Buckets after ``now``'s bucket or before the baseline are ignored; a scope
        with buckets only there is absent.
        """
        current_start = self.current_start(now)
        baseline_start = current_start - timedelta(seconds=self.baseline_s)
        end = align(now, self.bucket_s) + timedelta(seconds=self.bucket_s)
        out: dict[ScopeKey, Comparison] = {}
        for bucket in buckets:
            if not baseline_start <= bucket.start < end:
                continue
            pair = out.setdefault(bucket.key, Comparison())
            (pair.current if bucket.start >= current_start else pair.baseline).add(bucket)
        return out

    def closed(self, buckets: Iterable[Bucket], now: datetime) -> list[Bucket]:
        """The buckets that are final at ``now``, in the order given."""
        return [b for b in buckets if self.is_closed(b, now)]
