"""Baseline: the store as attnwatch wrote it before Alembic (store schema version 4).

Revision ID: 0001_schema4
Revises:
Create Date: 2026-12-07

The tables are frozen here as they were (main at 242fde2), not imported from the live
schema, so later changes to the code cannot change what this revision does.  A store
written before Alembic has no ``alembic_version`` and may hold any part of this schema:
the pipeline's tables (store versions 1 to 4), the run loop's side tables, the
dashboard's.  So this revision creates what is missing and adds the columns store
versions 2 to 4 introduced (all nullable: old rows get NULL, "unknown"), and leaves
everything present, rows included, as it is.  A new store gets all of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_schema4"
down_revision = None
branch_labels = None
depends_on = None

_time = sa.DateTime(timezone=True)
_serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_m = sa.MetaData()

sa.Table(
    "events",
    _m,
    sa.Column("input_id", sa.Text, primary_key=True),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("conversation_id", sa.Text),
    sa.Column("channel", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("article_id", sa.Text),
    sa.Column("news_source", sa.Text),
    sa.Column("tickers", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent_label", sa.Text),
    sa.Column("intent_score", sa.Float),
    sa.Column("intent_top", sa.Text),
    sa.Column("intent_attention", sa.Text),
    sa.Column("sentiment_label", sa.Text, nullable=False),
    sa.Column("sentiment_score", sa.Float, nullable=False),
    sa.Column("sentiment_top", sa.Text, nullable=False),
    sa.Column("sentiment_attention", sa.Text, nullable=False),
    sa.Column("sentiment_evidence", sa.Text),
    sa.Column("intent_faithful", sa.Boolean),  # store version 3
    sa.Column("sentiment_faithful", sa.Boolean),  # store version 3
    sa.Column("sentiment_evidence_attention", sa.Text),  # store version 4
    sa.Column("model_name", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("tokenizer_hash", sa.Text, nullable=False),
    sa.Column("event_time", _time, nullable=False),
    sa.Column("processed_time", _time, nullable=False),
    sa.Column("model_latency_ms", sa.Float, nullable=False),
    sa.Column("end_to_end_latency_ms", sa.Float, nullable=False),
    sa.Index("ix_events_event_time", "event_time"),
    sa.Index("ix_events_kind_event_time", "kind", "event_time"),
    sa.Index("ix_events_intent_label", "intent_label"),
    sa.Index("ix_events_sentiment_label", "sentiment_label"),
    # The dashboard's (dashboards/data/indexes.py created them on its start).
    sa.Index("ix_dash_events_sentiment_time", "sentiment_label", "event_time"),
    sa.Index("ix_dash_events_intent_time", "intent_label", "event_time"),
    sa.Index("ix_dash_events_processed", "processed_time", "input_id"),
    sa.Index("ix_dash_events_conversation", "conversation_id", "event_time"),
)
sa.Table(
    "dead_letters",
    _m,
    sa.Column("id", _serial, primary_key=True, autoincrement=True),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary),
    sa.Column("received_time", _time, nullable=False),
    sa.Column("key", sa.LargeBinary),  # store version 2, as the next three
    sa.Column("headers", sa.Text),
    sa.Column("source_timestamp", _time),
    sa.Column("replayed_time", _time),
    sa.UniqueConstraint(
        "source_topic", "source_partition", "source_offset", name="uq_dead_letters_source"
    ),
)
sa.Table(
    "store_meta",
    _m,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
sa.Table(
    "attempts",
    _m,
    sa.Column("source_topic", sa.Text, primary_key=True),
    sa.Column("source_partition", sa.Integer, primary_key=True),
    sa.Column("source_offset", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("updated_time", _time, nullable=False),
)
sa.Table(
    "alerts",
    _m,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("scope_kind", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("starts_at", _time, nullable=False),
    sa.Column("ends_at", _time),
    sa.Column("statistic", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("updated_time", _time, nullable=False),
    sa.Index("ix_alerts_status", "status"),
    sa.Index("ix_alerts_starts_at", "starts_at"),
)
sa.Table(
    "outbox",
    _m,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created", _time, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", _time, nullable=False),
    sa.Column("delivered_at", _time, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.UniqueConstraint("alert_id", "status", "receiver", name="outbox_alert_status_receiver"),
    sa.Index("outbox_due", "receiver", "delivered_at", "next_attempt_at"),
)
sa.Table(
    "leases",
    _m,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires", _time, nullable=False),
)
sa.Table(
    "corrections",
    _m,
    sa.Column("id", _serial, primary_key=True, autoincrement=True),
    sa.Column("input_id", sa.Text, nullable=False),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("old_label", sa.Text),
    sa.Column("new_label", sa.Text, nullable=False),
    sa.Column("analyst", sa.Text, nullable=False),
    sa.Column("created_time", _time, nullable=False),
    sa.Index("ix_corrections_input_id", "input_id"),
)
sa.Table(
    "ops_alerts",
    _m,
    sa.Column("id", _serial, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("starts_at", _time, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ends_at", _time),
    sa.Column("alertname", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("annotations", sa.Text, nullable=False),
    sa.Column("generator_url", sa.Text, nullable=False),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("first_received", _time, nullable=False),
    sa.Column("last_received", _time, nullable=False),
    sa.UniqueConstraint("fingerprint", "starts_at", name="uq_ops_alerts_fingerprint_starts_at"),
    sa.Index("ix_ops_alerts_status_last_received", "status", "last_received"),
)


def upgrade() -> None:
    """Create what is missing of the version-4 schema; keep what is there."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in _m.sorted_tables:
        if table.name not in present:
            table.create(bind)  # with its indexes
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:  # nullable: store versions 2-4 added only those
                op.add_column(table.name, sa.Column(column.name, column.type))
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(bind)


def downgrade() -> None:
    """Not supported: the baseline is where the store's history starts."""
    msg = "the baseline revision cannot be downgraded; restore a backup instead"
    raise NotImplementedError(msg)
