"""The event-time alert evaluator's saved state (issue 24): alert_progress, alert_scope_state.

Revision ID: 0002_alert_state
Revises: 0001_schema4
Create Date: 2026-12-07

Main between 242fde2 and Alembic created these two tables on first use, so a store may
have them already: they are created only when missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alert_state"
down_revision = "0001_schema4"
branch_labels = None
depends_on = None

_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the two tables unless a store from before Alembic already has them."""
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "alert_progress" not in present:
        op.create_table(
            "alert_progress",
            sa.Column("stream", sa.Text, primary_key=True),
            sa.Column("evaluated", _time),
            sa.Column("watermark", _time),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("updated_time", _time, nullable=False),
        )
    if "alert_scope_state" not in present:
        op.create_table(
            "alert_scope_state",
            sa.Column("stream", sa.Text, primary_key=True),
            sa.Column("scope_kind", sa.Text, primary_key=True),
            sa.Column("scope", sa.Text, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
        )


def downgrade() -> None:
    """Drop the evaluator's saved state (it starts from the last hour's events again)."""
    op.drop_table("alert_scope_state")
    op.drop_table("alert_progress")
