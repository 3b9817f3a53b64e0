"""Baseline: the raw store's two tables as main 242fde2 created them (on first use).

Revision ID: 0001_raw
Revises:
Create Date: 2026-12-07

Created only when missing: a raw store from before Alembic already has them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_raw"
down_revision = None
branch_labels = None
depends_on = None

_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``raw_events`` and ``raw_dead_letters`` unless they are there."""
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "raw_events" not in present:
        op.create_table(
            "raw_events",
            sa.Column("input_id", sa.Text, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("conversation_id", sa.Text),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("event_time", _time, nullable=False),
        )
        op.create_index("ix_raw_events_conversation_id", "raw_events", ["conversation_id"])
        op.create_index("ix_raw_events_event_time", "raw_events", ["event_time"])
    if "raw_dead_letters" not in present:
        op.create_table(
            "raw_dead_letters",
            sa.Column("source_topic", sa.Text, primary_key=True),
            sa.Column("source_partition", sa.Integer, primary_key=True),
            sa.Column("source_offset", sa.BigInteger, primary_key=True),
            sa.Column("value", sa.LargeBinary),
            sa.Column("received_time", _time, nullable=False),
        )


def downgrade() -> None:
    """Not supported: the baseline is where the raw store's history starts."""
    msg = "the baseline revision cannot be downgraded"
    raise NotImplementedError(msg)
