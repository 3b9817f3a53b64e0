"""Indexes on ``events`` that only the dashboard's queries need, created when it starts.

The pipeline's schema (``pipeline.store.tables``) indexes what writes and alerting use; its
``ix_events_event_time`` and ``ix_events_kind_event_time`` already serve the feed's keyset
walk.  The dashboard adds these with ``CREATE INDEX IF NOT EXISTS`` rather than changing
that schema:

- ``ix_dash_events_sentiment_time`` ``(sentiment_label, event_time)`` and
  ``ix_dash_events_intent_time`` ``(intent_label, event_time)``: a feed filtered by a label
  walks its label's events newest first.  With only the single-column label indexes,
  SQLite reads every event of that label and sorts them for each page (50 ms at 100,000
  events, growing with the store);
- ``ix_dash_events_processed`` ``(processed_time, input_id)``: the live stream's poll for
  rows processed since the last one it sent (without it, a full scan every second);
- ``ix_dash_events_conversation`` ``(conversation_id, event_time)``: a conversation's turns.

They are declared on a stand-in ``events`` table in the dashboard's own metadata, so the
pipeline's table objects (and what ``open_store`` creates) stay as they are.  Building them
on a large store takes a while once; on PostgreSQL they are built ``CONCURRENTLY`` so the
pipeline's writes go on meanwhile.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.store.engine import store_errors
from pipeline.store.tables import UTCDateTime

_metadata = sa.MetaData()
_events = sa.Table(
    "events",
    _metadata,
    sa.Column("input_id", sa.Text, primary_key=True),
    sa.Column("conversation_id", sa.Text),
    sa.Column("intent_label", sa.Text),
    sa.Column("sentiment_label", sa.Text),
    sa.Column("event_time", UTCDateTime),
    sa.Column("processed_time", UTCDateTime),
)
_COLUMNS = {
    "ix_dash_events_sentiment_time": ("sentiment_label", "event_time"),
    "ix_dash_events_intent_time": ("intent_label", "event_time"),
    "ix_dash_events_processed": ("processed_time", "input_id"),
    "ix_dash_events_conversation": ("conversation_id", "event_time"),
}
# postgresql_concurrently: the pipeline's writes go on while an index is built.
INDEXES = tuple(
    sa.Index(name, *(_events.c[c] for c in columns), postgresql_concurrently=True)
    for name, columns in _COLUMNS.items()
)


def ensure_indexes(engine: Engine) -> None:
    """Create the dashboard's indexes that the store lacks (safe to call on every start)."""
    with store_errors("creating the dashboard's indexes"):
        if engine.dialect.name == "postgresql":
            # CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for index in INDEXES:
                    index.create(conn, checkfirst=True)
            return
        with engine.begin() as conn:
            for index in INDEXES:
                index.create(conn, checkfirst=True)
