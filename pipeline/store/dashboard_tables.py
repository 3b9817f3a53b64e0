"""The dashboard's tables in the analyst store: analysts' corrections, operational alerts, indexes.

They live here, in the one schema (:data:`pipeline.store.tables.metadata`), so that Alembic
(:mod:`pipeline.store.migrate`) creates and migrates them with every other table and the
dashboard itself runs no DDL: it can start on a read-only store user.  What the rows mean
and how they are read and written stays in ``dashboards.data.corrections`` and
``dashboards.data.ops_alerts``.

The indexes on ``events`` serve only the dashboard's queries:

- ``ix_dash_events_sentiment_time`` ``(sentiment_label, event_time)`` and
  ``ix_dash_events_intent_time`` ``(intent_label, event_time)``: a feed filtered by a label
  walks its label's events newest first.  With only the single-column label indexes,
  SQLite reads every event of that label and sorts them for each page (50 ms at 100,000
  events, growing with the store);
- ``ix_dash_events_processed`` ``(processed_time, input_id)``: the live stream's poll for
  rows processed since the last one it sent (without it, a full scan every second);
- ``ix_dash_events_conversation`` ``(conversation_id, event_time)``: a conversation's turns.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.store.tables import UTCDateTime, events_table, metadata, serial_id

corrections_table = sa.Table(
    "corrections",
    metadata,
    serial_id(),
    sa.Column("input_id", sa.Text, nullable=False),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("old_label", sa.Text),
    sa.Column("new_label", sa.Text, nullable=False),
    sa.Column("analyst", sa.Text, nullable=False),
    sa.Column("created_time", UTCDateTime, nullable=False),
    sa.Index("ix_corrections_input_id", "input_id"),
)

ops_alerts_table = sa.Table(
    "ops_alerts",
    metadata,
    serial_id(),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # NULL while firing (Alertmanager sends Go's zero time then).
    sa.Column("ends_at", UTCDateTime),
    sa.Column("alertname", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("annotations", sa.Text, nullable=False),
    sa.Column("generator_url", sa.Text, nullable=False),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("first_received", UTCDateTime, nullable=False),
    sa.Column("last_received", UTCDateTime, nullable=False),
    sa.UniqueConstraint("fingerprint", "starts_at", name="uq_ops_alerts_fingerprint_starts_at"),
    sa.Index("ix_ops_alerts_status_last_received", "status", "last_received"),
)

#: The dashboard's indexes on ``events`` (name -> columns), see the module docstring.
DASHBOARD_INDEXES = {
    "ix_dash_events_sentiment_time": ("sentiment_label", "event_time"),
    "ix_dash_events_intent_time": ("intent_label", "event_time"),
    "ix_dash_events_processed": ("processed_time", "input_id"),
    "ix_dash_events_conversation": ("conversation_id", "event_time"),
}
for _name, _columns in DASHBOARD_INDEXES.items():
    sa.Index(_name, *(events_table.c[c] for c in _columns))
