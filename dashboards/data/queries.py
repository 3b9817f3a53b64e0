"""The dashboard's reads of the analyst store: typed rows for pages, DataFrames for exports.

Every query is SQLAlchemy Core with bound values, on the same engine and connection code
as :func:`pipeline.store.read_events`; exports go through that module's row-to-DataFrame
conversion, so a CSV or Parquet file has the columns and types analysts get from pandas.

Indexes the queries rely on (``ix_events_*`` from ``pipeline.store.tables``,
``ix_dash_*`` created by :mod:`dashboards.data.indexes`):

- feed and export pages (newest first, keyset on ``(event_time, input_id)``): a walk down
  ``ix_events_event_time``, or ``ix_events_kind_event_time`` with a stream, or
  ``ix_dash_events_sentiment_time`` / ``ix_dash_events_intent_time`` with a label filter,
  starting at the cursor, so page 1,000 costs what page 1 costs (only rows sharing one
  ``event_time`` are sorted by ``input_id``).  Channel, source, ticker and free text are
  checked on the rows walked: a rare value costs a longer walk, never a sort;
- live stream (rows processed since the last one sent): ``ix_dash_events_processed``;
- conversation: ``ix_dash_events_conversation``;
- ticker headlines: ``ix_events_kind_event_time`` (news newest first, the symbol matched
  on the JSON text as ``read_events`` matches it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dashboards.data.corrections import Correction, CorrectionTable
from dashboards.data.filters import Cursor, EventFilter
from pipeline.store.engine import store_errors
from pipeline.store.reads import _read as read_frame  # the pandas conversion read_events uses
from pipeline.store.tables import events_table
from pipeline.store.writes import Store

#: Most rows one feed page may ask for.
MAX_PAGE = 200
#: Most turns one conversation page shows.
MAX_TURNS = 1000
#: Most rows one export may hold, whatever ``limit`` asks for.
MAX_EXPORT_ROWS = 100_000
#: Rows per query while an export streams.
EXPORT_CHUNK = 2_000

_T = events_table
_ROW_COLUMNS = (
    _T.c.input_id,
    _T.c.kind,
    _T.c.conversation_id,
    _T.c.channel,
    _T.c.role,
    _T.c.news_source,
    _T.c.tickers,
    _T.c.text,
    _T.c.intent_label,
    _T.c.intent_score,
    _T.c.intent_top,
    _T.c.intent_attention,
    _T.c.sentiment_label,
    _T.c.sentiment_score,
    _T.c.sentiment_top,
    _T.c.sentiment_attention,
    _T.c.sentiment_evidence,
    _T.c.intent_faithful,
    _T.c.sentiment_faithful,
    _T.c.sentiment_evidence_attention,
    _T.c.model_name,
    _T.c.model_version,
    _T.c.event_time,
    _T.c.processed_time,
)


@dataclass(frozen=True)
class EventRow:
    """One stored event as the pages show it; attention lists hold ``{"word", "weight"}``."""

    input_id: str
    kind: str
    conversation_id: str | None
    channel: str | None
    role: str | None
    news_source: str | None
    tickers: list[str]
    text: str
    intent_label: str | None
    intent_score: float | None
    intent_top: list[dict[str, Any]] | None
    intent_attention: list[dict[str, Any]] | None
    sentiment_label: str
    sentiment_score: float
    sentiment_top: list[dict[str, Any]]
    sentiment_attention: list[dict[str, Any]]
    sentiment_evidence: str | None
    model_name: str
    model_version: str
    event_time: datetime
    processed_time: datetime
    #: Training's verdict on the task's attention (None: not measured, or an older row).
    intent_faithful: bool | None = None
    sentiment_faithful: bool | None = None
    #: The evidence sentence's own words (None: no evidence, or a row older than store v4).
    sentiment_evidence_attention: list[dict[str, Any]] | None = None
    corrections: list[Correction] = field(default_factory=list)

    def label(self, task: str) -> str | None:
        """The label shown for ``task``: the newest correction's, else the model's."""
        for correction in reversed(self.corrections):
            if correction.task == task:
                return correction.new_label
        return self.intent_label if task == "intent" else self.sentiment_label

    def probability(self, label: str) -> float:
        """P(``label``) for sentiment from the stored runners-up (0 when not listed)."""
        for entry in self.sentiment_top:
            if entry.get("label") == label:
                return float(entry.get("score", 0.0))
        return 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601 UTC)."""
        out = {k: v for k, v in self.__dict__.items() if k != "corrections"}
        out["event_time"] = self.event_time.isoformat()
        out["processed_time"] = self.processed_time.isoformat()
        out["corrections"] = [
            {**c.__dict__, "created_time": c.created_time.isoformat()} for c in self.corrections
        ]
        return out


@dataclass(frozen=True)
class FeedPage:
    """One page of the feed and the cursor of the next (older) page, if any."""

    rows: list[EventRow]
    next_cursor: Cursor | None


def conditions(f: EventFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of a filter (bound values only)."""
    where: list[sa.ColumnElement[bool]] = []
    if f.stream is not None:
        where.append(_T.c.kind == f.stream)
    if f.channel is not None:
        where.append(_T.c.channel == f.channel)
    if f.intent is not None:
        where.append(_T.c.intent_label == f.intent)
    if f.sentiment is not None:
        where.append(_T.c.sentiment_label == f.sentiment)
    if f.source is not None:
        where.append(_T.c.news_source == f.source)
    if f.ticker is not None:
        # As read_events: the quoted symbol inside the JSON text, so NWB does not match NWBX.
        tickers_text = sa.type_coerce(_T.c.tickers, sa.Text)
        where.append(tickers_text.contains(json.dumps(f.ticker), autoescape=True))
    if f.since is not None:
        where.append(_T.c.event_time >= f.since)
    if f.until is not None:
        where.append(_T.c.event_time < f.until)
    if f.text is not None:
        # autoescape: a % or _ the analyst types is a character, not a wildcard.
        where.append(_T.c.text.icontains(f.text, autoescape=True))
    return where


def older_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    """Rows after ``cursor`` in newest-first ``(event_time, input_id)`` order.

    Written as a range on ``event_time`` plus a tie-break, not a row-value comparison,
    so both SQLite and PostgreSQL walk the time index from the cursor.
    """
    return sa.and_(
        _T.c.event_time <= cursor.time,
        sa.or_(_T.c.event_time < cursor.time, _T.c.input_id < cursor.input_id),
    )


def _row(row: sa.Row[Any]) -> EventRow:
    m = row._mapping
    return EventRow(**{c.name: m[c.name] for c in _ROW_COLUMNS})


class Queries:
    """The dashboard's read API over one open store (corrections attached to rows)."""

    def __init__(self, store: Store, corrections: CorrectionTable) -> None:
        self.store = store
        self.corrections = corrections

    def _rows(self, stmt: sa.Select[Any], what: str) -> list[EventRow]:
        with store_errors(f"reading {what}"), self.store.engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(stmt)]
        found = self.corrections.for_events(r.input_id for r in rows)
        for row in rows:
            row.corrections.extend(found.get(row.input_id, ()))
        return rows

    def feed(self, f: EventFilter, cursor: Cursor | None = None, limit: int = 50) -> FeedPage:
        """Events matching ``f``, newest first, after ``cursor``; at most ``limit``."""
        stmt = sa.select(*_ROW_COLUMNS).where(*conditions(f))
        if cursor is not None:
            stmt = stmt.where(older_than(cursor))
        stmt = stmt.order_by(_T.c.event_time.desc(), _T.c.input_id.desc()).limit(limit + 1)
        rows = self._rows(stmt, "the feed")
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more and rows else None
        return FeedPage(rows, Cursor(last.event_time, last.input_id) if last else None)

    def ping(self) -> None:
        """Raise :class:`~pipeline.errors.StoreError` unless the store answers a query."""
        with store_errors("reaching the store"), self.store.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1))).scalar_one()

    def newest_processed(self) -> Cursor | None:
        """The position of the most recently processed event (where a live stream starts)."""
        stmt = (
            sa.select(_T.c.processed_time, _T.c.input_id)
            .order_by(_T.c.processed_time.desc(), _T.c.input_id.desc())
            .limit(1)
        )
        with store_errors("reading the newest event"), self.store.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return Cursor(row.processed_time, row.input_id) if row is not None else None

    def processed_after(self, f: EventFilter, after: Cursor | None, limit: int) -> list[EventRow]:
        """Events matching ``f`` processed after ``after``, oldest first; at most ``limit``."""
        stmt = sa.select(*_ROW_COLUMNS).where(*conditions(f))
        if after is not None:
            stmt = stmt.where(
                _T.c.processed_time >= after.time,
                sa.or_(_T.c.processed_time > after.time, _T.c.input_id > after.input_id),
            )
        stmt = stmt.order_by(_T.c.processed_time, _T.c.input_id).limit(limit)
        return self._rows(stmt, "new events")

    def event(self, input_id: str) -> EventRow | None:
        """One event by ``input_id``, or ``None``."""
        rows = self._rows(sa.select(*_ROW_COLUMNS).where(_T.c.input_id == input_id), "an event")
        return rows[0] if rows else None

    def conversation(self, conversation_id: str, limit: int = MAX_TURNS) -> list[EventRow]:
        """A conversation's turns in event-time order (at most ``limit``)."""
        stmt = (
            sa.select(*_ROW_COLUMNS)
            .where(_T.c.conversation_id == conversation_id)
            .order_by(_T.c.event_time, _T.c.input_id)
            .limit(limit)
        )
        return self._rows(stmt, "a conversation")

    def export_frames(
        self, f: EventFilter, limit: int, chunk: int | None = None
    ) -> Iterator[pd.DataFrame]:
        """Events matching ``f``, newest first, as DataFrames of at most ``chunk`` rows.

        Stops after ``limit`` rows in all; each chunk (default :data:`EXPORT_CHUNK`) is
        one keyset query, so a long export never holds a transaction or more than a
        chunk in memory.  The frames are what :func:`~pipeline.store.read_events`
        returns (every column, aware UTC times, JSON columns as Python objects).
        """
        cursor: Cursor | None = None
        left = limit
        while left > 0:
            size = min(chunk or EXPORT_CHUNK, left)
            stmt = sa.select(_T).where(*conditions(f))
            if cursor is not None:
                stmt = stmt.where(older_than(cursor))
            stmt = stmt.order_by(_T.c.event_time.desc(), _T.c.input_id.desc()).limit(size)
            frame = read_frame(self.store, stmt, ("event_time", "processed_time"))
            if frame.empty:
                return
            yield frame
            left -= len(frame)
            if len(frame) < size:
                return
            last = frame.iloc[-1]
            cursor = Cursor(last["event_time"].to_pydatetime(), str(last["input_id"]))
